from flywheel.server.settings import SettingsError


class EmbeddedError(RuntimeError):
    """An embedded service could not start; the message says why and what to do."""


class UnreachableDataDir(EmbeddedError, SettingsError):
    """FLYWHEEL_DATA_DIR is where the embedded Postgres cannot run.

    A SettingsError too, so the CLI ends with its one line and exit code 2."""

    def __init__(self, problem: str) -> None:
        SettingsError.__init__(self, "FLYWHEEL_DATA_DIR", problem)

"""Test kit for Flywheel and its plugins (the `pytest11` entry point): the fixtures in
`pytest_plugin`, and what tests need beside them.

- `eventually(check, timeout=...)`: wait for something a test cannot await.
- `cli`: Flywheel's click group, for ``click.testing.CliRunner().invoke(cli, [...], env=...)``
  (your plugin's commands are under it, as in the `flywheel` command).
"""

from typing import Any

from flywheel.server.testing.polling import eventually

__all__ = ["eventually", "cli"]


def __getattr__(name: str) -> Any:
    # Lazily: importing the CLI builds the whole app, and pytest imports this package at start.
    if name == "cli":
        from flywheel.server.cli.main import cli

        return cli
    raise AttributeError(name)

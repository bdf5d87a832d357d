"""The sandbox a deployment uses, from FLYWHEEL_SANDBOX (settings.sandbox)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flywheel.server.sandbox.bubblewrap import BubblewrapSandbox, bwrap_path
from flywheel.server.sandbox.docker import DockerSandbox
from flywheel.server.sandbox.spec import Sandbox, SandboxError

if TYPE_CHECKING:
    from flywheel.server.state import AppState

# Where `run_sandboxed` (server/plugin_api.py) keeps the process's one sandbox, made on first use:
# the Docker backend's client holds an HTTP session to the engine for the process's life.
CACHE_KEY = "flywheel.sandbox"


def backend_name(setting: str) -> str:
    """"auto" is bubblewrap when it is installed, else none."""
    if setting == "auto":
        return "bubblewrap" if bwrap_path() else "none"
    return setting


def make_sandbox(setting: str) -> Sandbox:
    """The configured backend; SandboxError when it is "none" or cannot be used here."""
    name = backend_name(setting)
    if name == "bubblewrap":
        return BubblewrapSandbox()
    if name == "docker":
        return DockerSandbox()
    raise SandboxError("no sandbox is configured (FLYWHEEL_SANDBOX=none, or bubblewrap is not installed)")


async def close_cached(state: AppState) -> None:
    """Close the process's sandbox (the Docker client's session), if one was made; at shutdown."""
    box = state.extras.pop(CACHE_KEY, None)
    if box is not None:
        await box.close()

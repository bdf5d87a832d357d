"""The sandbox a deployment uses, from FLYWHEEL_SANDBOX (settings.sandbox)."""

from __future__ import annotations

from flywheel.server.sandbox.bubblewrap import BubblewrapSandbox, bwrap_path
from flywheel.server.sandbox.docker import DockerSandbox
from flywheel.server.sandbox.spec import Sandbox, SandboxError


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

"""Sandboxes: run untrusted commands (a tenant's test suite) isolated and bounded.

`SandboxSpec` in, `SandboxResult` out, through a `Sandbox` backend chosen by
FLYWHEEL_SANDBOX: bubblewrap.py (no engine needed) or docker.py (Docker or
Podman's API). workspace.py unpacks a tenant's tarball safely first.
"""

from flywheel.server.sandbox.factory import backend_name, make_sandbox
from flywheel.server.sandbox.spec import Sandbox, SandboxError, SandboxResult, SandboxSpec
from flywheel.server.sandbox.workspace import UnsafeArchive, extract_workspace

__all__ = ["Sandbox", "SandboxError", "SandboxResult", "SandboxSpec", "UnsafeArchive", "backend_name",
           "extract_workspace", "make_sandbox"]

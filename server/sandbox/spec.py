"""What a sandboxed run is asked to do, and what came of it; the interface every backend implements."""

from __future__ import annotations

import abc
import re
from typing import Annotated

import msgspec

MiB = 1024 * 1024
# Paths a run may hand back from its workspace (`collect`): plain relative names only, since
# they are given to `tar` inside the sandbox.
COLLECT_PATH = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$")
ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]{0,63}$")


class SandboxError(Exception):
    """The sandbox could not run the command at all (not a failing command: that is a result)."""


class SandboxSpec(msgspec.Struct, kw_only=True, frozen=True):
    """One run. `workspace` (a host folder) is copied into `/workspace`, a tmpfs of
    `scratch_bytes` that is the only writable place besides `/tmp` (the same size);
    the command starts there. `collect` names files under `/workspace` handed back in
    `SandboxResult.files` after the command ends."""

    command: list[str]
    workspace: str | None = None
    env: dict[str, str] = {}
    timeout_s: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 60.0
    memory_bytes: Annotated[int, msgspec.Meta(ge=16 * MiB)] = 512 * MiB
    cpus: Annotated[float, msgspec.Meta(gt=0, le=64)] = 1.0
    pids: Annotated[int, msgspec.Meta(ge=8, le=32768)] = 256
    scratch_bytes: Annotated[int, msgspec.Meta(ge=MiB)] = 256 * MiB
    output_limit_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 4 * MiB
    collect: list[str] = []
    image: str | None = None  # the Docker backend's image; bubblewrap uses the host's /usr

    def check(self) -> None:
        """Raise SandboxError for values that would reach a shell or a mount table unchecked."""
        if not self.command or any("\x00" in a for a in self.command):
            raise SandboxError("a command is a non-empty list of arguments without NUL characters")
        for path in self.collect:
            if not COLLECT_PATH.match(path) or ".." in path.split("/"):
                raise SandboxError(f"collect path {path!r} is not a plain relative path")
        for name, value in self.env.items():
            if not ENV_NAME.match(name) or "\x00" in value:
                raise SandboxError(f"environment variable {name!r} is not allowed")


class SandboxResult(msgspec.Struct, kw_only=True):
    """How a run ended. `exit_code` is the command's (128+N when killed by signal N);
    `timed_out` when the wall clock ran out, `killed` when the sandbox killed it (timeout
    or memory). `limits` says how each limit was enforced, e.g. {"memory": "cgroup"}."""

    backend: str
    exit_code: int
    stdout: str
    stderr: str
    duration_s: float
    timed_out: bool = False
    killed: bool = False
    oom: bool = False
    truncated: bool = False
    limits: dict[str, str] = {}
    files: dict[str, bytes] = {}

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.killed


class Sandbox(abc.ABC):
    """A backend: `await sandbox.run(spec)`."""

    name: str

    @abc.abstractmethod
    async def run(self, spec: SandboxSpec) -> SandboxResult:
        """Run `spec.command` isolated; raise SandboxError only when it could not start."""

    async def close(self) -> None:  # noqa: B027 - optional
        """Release connections (the Docker client)."""


def decode(data: bytes) -> str:
    """Output as text whatever the command wrote: invalid UTF-8 becomes U+FFFD, NULs are dropped."""
    return data.decode("utf-8", errors="replace").replace("\x00", "")

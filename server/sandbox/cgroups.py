"""A cgroup v1 around one bubblewrap run: memory, pids and CPU limits the kernel enforces.

bubblewrap itself sets no resource limits. Where the cgroup v1 hierarchies are
writable (a root service, a privileged container) each run gets its own group
under `flywheel-sandbox/` in the memory, pids and cpu hierarchies; the launcher
writes its pid into them before it execs bwrap, so nothing the run starts is
ever outside. Elsewhere `available()` is False and the caller falls back to
rlimits (which give a MemoryError rather than a kill, and no pids limit,
since inside the user namespace every process counts against the host's uid).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import uuid
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
PARENT = "flywheel-sandbox"
_CFS_PERIOD_US = 100_000


def available() -> bool:
    """True when this process may make memory and pids groups (cgroup v1)."""
    for controller in ("memory", "pids"):
        base = ROOT / controller
        if not (base / "cgroup.procs").exists() or not os.access(base, os.W_OK):
            return False
    return True


class Cgroup:
    """One run's groups; `procs_files` are what the launcher writes its pid into."""

    def __init__(self, dirs: dict[str, Path]) -> None:
        self.dirs = dirs

    @classmethod
    def create(cls, *, memory_bytes: int, pids: int, cpus: float) -> Cgroup:
        name = uuid.uuid4().hex
        dirs: dict[str, Path] = {}
        group = cls(dirs)
        try:
            dirs["memory"] = _make("memory", name)
            _write(dirs["memory"] / "memory.limit_in_bytes", memory_bytes)
            # With swap accounting, the limit must cover swap too or the run just swaps.
            with contextlib.suppress(FileNotFoundError):
                _write(dirs["memory"] / "memory.memsw.limit_in_bytes", memory_bytes)
            dirs["pids"] = _make("pids", name)
            _write(dirs["pids"] / "pids.max", pids)
            if (ROOT / "cpu" / "cpu.cfs_quota_us").exists():
                dirs["cpu"] = _make("cpu", name)
                _write(dirs["cpu"] / "cpu.cfs_period_us", _CFS_PERIOD_US)
                _write(dirs["cpu"] / "cpu.cfs_quota_us", int(cpus * _CFS_PERIOD_US))
        except OSError:
            group.remove()
            raise
        return group

    @property
    def procs_files(self) -> list[str]:
        return [str(d / "cgroup.procs") for d in self.dirs.values()]

    @property
    def enforced(self) -> dict[str, str]:
        return {name: "cgroup-v1" for name in self.dirs}

    def oom_killed(self) -> bool:
        """True when the kernel's OOM killer acted in this group (or it hit its limit)."""
        path = self.dirs.get("memory")
        if path is None:
            return False
        try:
            control = (path / "memory.oom_control").read_text()
        except OSError:
            return False
        for line in control.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill" and int(value) > 0:
                return True
        return int((path / "memory.failcnt").read_text() or 0) > 0 and "under_oom 1" in control

    def kill_all(self) -> None:
        """SIGKILL whatever is still in the group (a child that escaped the process group)."""
        path = self.dirs.get("pids") or self.dirs.get("memory")
        if path is None:
            return
        for _ in range(20):
            pids = [int(p) for p in _read_procs(path)]
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

    def empty(self) -> bool:
        return not any(_read_procs(path) for path in self.dirs.values())

    def remove(self) -> None:
        for path in self.dirs.values():
            with contextlib.suppress(OSError):
                path.rmdir()

    async def release(self, *, wait_s: float = 2.0) -> None:
        """Kill what is left, wait until the kernel has taken every task out (the sandbox's pid 1
        dies when bwrap does, a moment after bwrap itself is reaped), then remove the groups."""
        self.kill_all()
        for _ in range(int(wait_s / 0.005)):
            if self.empty():
                break
            await asyncio.sleep(0.005)
        self.remove()


def _make(controller: str, name: str) -> Path:
    parent = ROOT / controller / PARENT
    parent.mkdir(exist_ok=True)
    path = parent / name
    path.mkdir()
    return path


def _write(path: Path, value: int) -> None:
    path.write_text(str(value))


def _read_procs(path: Path) -> list[str]:
    try:
        return (path / "cgroup.procs").read_text().split()
    except OSError:
        return []

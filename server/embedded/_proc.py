"""Small helpers shared by the embedded services."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import stat
import time
from pathlib import Path
from typing import NamedTuple

# Unix socket paths are limited to 107 bytes (sun_path) on Linux.
MAX_SOCKET_PATH = 107


def running_as_root() -> bool:
    return os.geteuid() == 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stat(pid: int) -> list[str] | None:
    """/proc/PID/stat from field 3 (state) on; None when unreadable."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rpartition(")")[2].split()  # the command name may hold spaces and ")"


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    # A zombie (dead, not yet reaped by its parent) still answers kill(pid, 0).
    fields = _stat(pid)
    return fields is None or fields[0] not in ("Z", "X")


def parent_pid(pid: int) -> int | None:
    fields = _stat(pid)
    return int(fields[1]) if fields else None


def start_time(pid: int) -> int | None:
    """When `pid` started (clock ticks since boot): with the pid, names one process for good."""
    fields = _stat(pid)
    return int(fields[19]) if fields else None


def processes_in(folder: Path, executable: str) -> list[int]:
    """Live processes running `executable` (a file name) with `folder` as working directory.

    Found by their executable and cwd, not their command line: redis-server
    rewrites its process title, so its arguments cannot be read back.
    """
    folder_str = str(Path(folder).resolve())
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            exe = os.readlink(f"/proc/{entry.name}/exe")
            cwd = os.readlink(f"/proc/{entry.name}/cwd")
        except OSError:  # gone, a kernel thread, or another user's
            continue
        if Path(exe.removesuffix(" (deleted)")).name == executable and cwd == folder_str:
            if pid_alive(int(entry.name)):
                found.append(int(entry.name))
    return found


class Owner(NamedTuple):
    """The Flywheel process that started an embedded server (see write_owner)."""

    pid: int
    started: int | None  # start_time(pid); None in files written by older versions

    @property
    def alive(self) -> bool:
        # The start time tells a live owner from an unrelated process that got its pid.
        if not pid_alive(self.pid):
            return False
        return self.started is None or start_time(self.pid) in (None, self.started)


def write_owner(path: Path) -> None:
    """Record this process as the owner of the server it is starting."""
    path.write_text(f"{os.getpid()} {start_time(os.getpid()) or ''}".strip() + "\n")


def read_owner(path: Path) -> Owner | None:
    try:
        fields = path.read_text().split()
        return Owner(int(fields[0]), int(fields[1]) if len(fields) > 1 else None)
    except (FileNotFoundError, IndexError, ValueError):
        return None


def unreachable_parent(path: Path, uid: int, gid: int) -> Path | None:
    """The first folder on the way to `path` that `uid` cannot traverse, if any."""
    for parent in [*reversed(Path(path).resolve().parents), Path(path).resolve()]:
        try:
            st = parent.stat()
        except FileNotFoundError:
            return None  # to be created by us, below a traversable parent
        mode = st.st_mode
        if st.st_uid == uid:
            ok = mode & stat.S_IXUSR
        elif st.st_gid == gid:
            ok = mode & stat.S_IXGRP
        else:
            ok = mode & stat.S_IXOTH
        if not ok:
            return parent
    return None


def secret_file(path: Path) -> str:
    """A random password kept in a 0600 file (created once)."""
    if path.exists():
        return path.read_text().strip()
    value = secrets.token_urlsafe(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value)
    return value


def terminate(pid: int, *, grace_s: float = 10.0) -> bool:
    """SIGTERM `pid` (not our child), SIGKILL if it outlives `grace_s`; True once it is gone."""
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return True
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if not pid_alive(pid):
                return True
            time.sleep(0.05)
    return not pid_alive(pid)

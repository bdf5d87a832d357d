"""Small helpers shared by the embedded services."""

from __future__ import annotations

import os
import secrets
import socket
import stat
from pathlib import Path

# Unix socket paths are limited to 107 bytes (sun_path) on Linux.
MAX_SOCKET_PATH = 107
UNPRIVILEGED_UID = 65534  # "nobody": Postgres refuses to run as root


def running_as_root() -> bool:
    return os.geteuid() == 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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

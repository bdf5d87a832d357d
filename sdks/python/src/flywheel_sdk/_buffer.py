"""The offline buffer: batches the server has not acknowledged, one file each.

A file is named `<seq>-<count>-<key>.json` and holds the exact request body
that was (or will be) sent: the same bytes under the same Idempotency-Key
after a restart, which is what lets the server recognise a batch it already
stored (its idempotency record hashes the body). `seq` orders the files
(fixed width, so names sort as numbers; a split batch's halves append a
digit and sort in its place); `count` is known without reading the file.

A file is written to a temporary name, fsynced, renamed, and the folder
fsynced: after a crash a batch file is either whole or absent. It is removed
only once the server acknowledged the batch (or rejected it for good). A
lock file keeps a second client (another process) off the same folder:
two clients draining one folder would send each batch twice.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no advisory lock; use one buffer folder per process there
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger("flywheel_sdk")

SEQ_DIGITS = 12
_NAME = re.compile(rf"^(\d{{{SEQ_DIGITS},}})-(\d{{1,9}})-([0-9a-f]{{32}})\.json$")


class BufferLocked(RuntimeError):
    """Another client (in this process or another one) uses this buffer folder."""


@dataclass(frozen=True)
class Stored:
    seq: str
    count: int
    key: str
    path: Path


class FileBuffer:
    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._lock = open(self.folder / ".lock", "a+")  # held open: the flock lasts as long as the file
        if fcntl is not None:
            try:
                fcntl.flock(self._lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self._lock.close()
                raise BufferLocked(f"{self.folder} is in use by another Flywheel client") from None
        for partial in self.folder.glob(".tmp-*"):  # a write a crash interrupted: never acknowledged, never whole
            partial.unlink(missing_ok=True)
        self._next = 1

    def load(self) -> list[Stored]:
        """The batches on disk, oldest first."""
        found = []
        for path in self.folder.iterdir():
            match = _NAME.match(path.name)
            if match is None:
                if not path.name.startswith("."):
                    log.warning("ignoring %s in the Flywheel buffer folder (not a batch file)", path.name)
                continue
            found.append(Stored(match[1], int(match[2]), match[3], path))
        found.sort(key=lambda s: s.seq)
        if found:
            self._next = max(int(s.seq[:SEQ_DIGITS]) for s in found) + 1
        return found

    def write(self, key: str, count: int, body: bytes, seq: str | None = None) -> Stored:
        """Store a batch durably; `seq` for a split batch's halves, else the next number."""
        if seq is None:
            seq, self._next = f"{self._next:0{SEQ_DIGITS}d}", self._next + 1
        path = self.folder / f"{seq}-{count}-{key}.json"
        partial = self.folder / f".tmp-{seq}-{key}"
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            view = memoryview(body)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(partial, path)
        self._sync_folder()
        return Stored(seq, count, key, path)

    def read(self, stored_path: Path) -> bytes | None:
        try:
            return stored_path.read_bytes()
        except FileNotFoundError:  # removed by hand: nothing left to send
            return None

    def remove(self, stored_path: Path) -> None:
        # No fsync of the folder: a removal lost in a crash only means the
        # batch is sent again, under its key, and the server recognises it.
        stored_path.unlink(missing_ok=True)

    def close(self) -> None:
        self._lock.close()  # releases the flock

    def _sync_folder(self) -> None:
        if not hasattr(os, "O_DIRECTORY"):  # Windows cannot open a folder; rename is durable enough there
            return
        fd = os.open(self.folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

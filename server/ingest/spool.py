"""The on-disk spool: where acknowledged events wait while Postgres is away.

One file per spooled flush, written to a temporary name, fsync'd, renamed
into place and the folder fsync'd: a file either exists whole or not at all,
so a crash never leaves half a batch. Files are named by a monotonic
sequence and drained in that order; a file is deleted only after its rows
are committed, and a crash between commit and delete is harmless because
the insert skips rows already stored.

Rows Postgres refuses for their data (a poison record) are moved to the
dead-letter folder `dead-letter/` beside the batches, one JSON Lines file
per spool file, named after it (so a drain repeated after a crash rewrites
the same file): each line holds the tenant, the event id, the reason and
the event as stored. `/readyz` reports degraded while any file is there;
an operator inspects, fixes or re-sends the events, then deletes the file.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import msgspec

from flywheel.server.ingest.rows import EventRow

_SUFFIX = ".batch"
DEAD_LETTER = "dead-letter"
_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(list[EventRow])


class SpoolFull(Exception):
    pass


class Spool:
    def __init__(self, folder: Path, max_bytes: int) -> None:
        self.folder = Path(folder)
        self.max_bytes = max_bytes
        self.bytes = 0
        self.files = 0
        self._seq = 0

    def open(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        for leftover in self.folder.glob("*.tmp"):  # a write that never completed: never acknowledged
            leftover.unlink()
        pending = self.pending()
        self.files = len(pending)
        self.bytes = sum(p.stat().st_size for p in pending)
        self._seq = max((int(p.stem.split("-")[0]) for p in pending), default=0)

    def pending(self) -> list[Path]:
        return sorted(self.folder.glob(f"*{_SUFFIX}"))

    @property
    def dead_letter_folder(self) -> Path:
        return self.folder / DEAD_LETTER

    def dead_letters(self) -> list[Path]:
        """Files in the dead-letter folder (none when it does not exist)."""
        folder = self.dead_letter_folder
        if not folder.is_dir():
            return []
        return sorted(p for p in folder.iterdir() if not p.name.endswith((".tmp", ".reason.txt")))

    async def quarantine(self, source: Path, refused: list[tuple[EventRow, str]]) -> Path:
        """Durably write refused rows of spool file `source` to the dead-letter folder."""
        lines = [msgspec.json.encode({"tenant_id": row.tenant_id, "event_id": row.event_id, "day": row.day,
                                      "type": row.type, "reason": reason,
                                      "event": msgspec.Raw(row.body)}) for row, reason in refused]
        data = b"\n".join(lines) + b"\n"
        name = f"{source.stem}.jsonl"
        await asyncio.to_thread(self._durable_write, self.dead_letter_folder, name, data)
        return self.dead_letter_folder / name

    def quarantine_file(self, source: Path, reason: str) -> Path:
        """Move a spool file nothing can read into the dead-letter folder, as it is."""
        folder = self.dead_letter_folder
        folder.mkdir(exist_ok=True)
        target = folder / source.name
        (folder / f"{source.name}.reason.txt").write_text(reason + "\n")
        size = source.stat().st_size
        os.rename(source, target)
        self._gone(size)
        return target

    def _write(self, name: str, data: bytes) -> None:
        self._durable_write(self.folder, f"{name}{_SUFFIX}", data)

    @staticmethod
    def _durable_write(folder: Path, final_name: str, data: bytes) -> None:
        folder.mkdir(exist_ok=True)
        tmp = folder / f"{final_name}.tmp"
        tmp.unlink(missing_ok=True)  # a write a crash interrupted: never acknowledged, never renamed
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, folder / final_name)
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # the rename itself must survive a power cut
        finally:
            os.close(dir_fd)

    async def write(self, rows: list[EventRow]) -> None:
        """Durably store `rows`; returns only once they are on disk."""
        data = _encoder.encode(rows)
        if self.bytes + len(data) > self.max_bytes:
            raise SpoolFull(f"spool is full ({self.bytes} of {self.max_bytes} bytes)")
        self._seq = max(self._seq + 1, time.time_ns())
        self.bytes += len(data)  # reserved before the await, so concurrent writers respect the bound
        try:
            await asyncio.to_thread(self._write, f"{self._seq:020d}-{os.getpid()}", data)
        except BaseException:
            self.bytes -= len(data)
            raise
        self.files += 1

    async def read(self, path: Path) -> list[EventRow]:
        return _decoder.decode(await asyncio.to_thread(path.read_bytes))

    def remove(self, path: Path) -> None:
        size = path.stat().st_size
        path.unlink()
        self._gone(size)

    def _gone(self, size: int) -> None:
        """A batch of `size` bytes left the spool (drained, or set aside)."""
        self.bytes -= size
        self.files -= 1

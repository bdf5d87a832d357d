"""Bounded capture of a command's output, and the files a run hands back after it.

A sandboxed command may print without end; we keep the first and the last
`limit` bytes and drop the middle, reading on so the command never blocks on
a full pipe. The files named in `collect` come back on stdout after the
command ends, as a base64 tar behind a per-run marker: that works the same
through a pipe (bubblewrap) and through container logs (Docker), and a
command that forges the section only forges its own results.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import tarfile

_CUT = b"\n[... output truncated ...]\n"


class Capture:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def feed(self, data: bytes) -> None:
        self.total += len(data)
        room = self.limit - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if data:
            self.tail += data
            if len(self.tail) > self.limit:
                del self.tail[: len(self.tail) - self.limit]

    @property
    def truncated(self) -> bool:
        return self.total > len(self.head) + len(self.tail)

    def value(self) -> bytes:
        return bytes(self.head) + (_CUT if self.truncated else b"") + bytes(self.tail)


async def pump(stream: asyncio.StreamReader | None, capture: Capture) -> None:
    if stream is None:
        return
    while chunk := await stream.read(65536):
        capture.feed(chunk)


def split_collected(stdout: bytes, marker: bytes, limit: int) -> tuple[bytes, dict[str, bytes]]:
    """The command's own stdout, and the regular files in the tar behind the last marker."""
    at = stdout.rfind(b"\n" + marker + b"\n")
    if at < 0:
        return stdout, {}
    own, packed = stdout[:at], stdout[at + len(marker) + 2:]
    try:
        raw = base64.b64decode(b"".join(packed.split()), validate=True)
        archive = tarfile.open(fileobj=io.BytesIO(raw), mode="r:")
        files: dict[str, bytes] = {}
        for member in archive:
            if member.isfile() and member.size <= limit:
                files[member.name] = archive.extractfile(member).read()  # type: ignore[union-attr]
        return own, files
    except (binascii.Error, ValueError, tarfile.TarError):
        return own, {}

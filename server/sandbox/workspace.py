"""Unpacking a tenant's workspace tarball without letting it write outside the folder.

Every member is checked before anything is written: a name from an
allow-list of characters, relative, without `..` or empty segments; only
regular files, folders, and links whose target stays inside (a link's
target is resolved lexically, and no member may lie under an earlier link,
since a link to a folder would make the lexical check meaningless); no
devices, FIFOs or sockets; bounded total size and member count. Modes are
reduced to rwx bits (no setuid). Python's own `data` filter then extracts,
as a second line of defence.
"""

from __future__ import annotations

import posixpath
import re
import tarfile
from pathlib import Path
from typing import IO

import msgspec

# Printable ASCII and non-control Unicode, no backslash: what a repository's paths hold.
_NAME = re.compile(r"^[^\x00-\x1f\x7f\\]{1,1024}$")


class UnsafeArchive(Exception):
    """The tarball would escape its folder or exceed a limit; the message says which member."""


class WorkspaceStats(msgspec.Struct):
    files: int
    bytes: int


def extract_workspace(source: str | Path | IO[bytes], dest: str | Path, *, max_bytes: int = 256 * 1024 * 1024,
                      max_files: int = 20_000) -> WorkspaceStats:
    """Check every member of the tar (plain or compressed) at `source`, then extract into `dest`."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    try:
        archive = (tarfile.open(fileobj=source, mode="r:*") if hasattr(source, "read")
                   else tarfile.open(source, mode="r:*"))
    except (tarfile.TarError, OSError) as exc:
        raise UnsafeArchive(f"not a readable tar archive: {exc}") from None
    with archive:
        try:
            members = archive.getmembers()
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise UnsafeArchive(f"the archive is damaged: {exc}") from None
        stats = check_members(members, max_bytes=max_bytes, max_files=max_files)
        for member in members:
            member.mode = (member.mode or 0o644) & 0o777
            member.uid = member.gid = 0
            member.uname = member.gname = ""
        try:
            archive.extractall(dest, members=members, filter="data")
        except (tarfile.TarError, OSError) as exc:
            raise UnsafeArchive(f"could not extract: {exc}") from None
    return stats


def check_members(members: list[tarfile.TarInfo], *, max_bytes: int, max_files: int) -> WorkspaceStats:
    if len(members) > max_files:
        raise UnsafeArchive(f"the archive holds {len(members)} members; at most {max_files} are allowed")
    links: set[str] = set()
    files: set[str] = set()
    total = 0
    for member in members:
        name = _check_name(member.name)
        if any(parent in links for parent in _parents(name)):
            raise UnsafeArchive(f"{member.name!r} lies under a link")
        if member.issym() or member.islnk():
            _check_link(member, name, files)
            links.add(name)
        elif member.isfile():
            total += member.size
            if total > max_bytes:
                raise UnsafeArchive(f"the archive unpacks to more than {max_bytes} bytes")
            files.add(name)
        elif not member.isdir():
            raise UnsafeArchive(f"{member.name!r} is a device, FIFO or other special file")
    return WorkspaceStats(files=len(files), bytes=total)


def _check_name(raw: str) -> str:
    if not _NAME.match(raw):
        raise UnsafeArchive(f"member name {raw[:100]!r} has characters that are not allowed")
    if raw.startswith("/"):
        raise UnsafeArchive(f"{raw!r} is an absolute path")
    parts = [p for p in raw.rstrip("/").split("/") if p != "."]
    if not parts or any(p in ("", "..") for p in parts):
        raise UnsafeArchive(f"{raw!r} has an empty or '..' segment")
    return "/".join(parts)


def _check_link(member: tarfile.TarInfo, name: str, files: set[str]) -> None:
    target = member.linkname
    if not target or target.startswith("/") or not _NAME.match(target):
        raise UnsafeArchive(f"link {member.name!r} points outside the workspace")
    if member.islnk():  # a hard link's target is a member name, relative to the archive root
        resolved = posixpath.normpath(target)
        if resolved not in files:
            raise UnsafeArchive(f"hard link {member.name!r} does not point to a file in the archive")
        return
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(name), target))
    if resolved == ".." or resolved.startswith("../"):
        raise UnsafeArchive(f"link {member.name!r} points outside the workspace")


def _parents(name: str) -> list[str]:
    parts = name.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]

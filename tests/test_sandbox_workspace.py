"""Workspace tarballs: a good one unpacks; each hostile one is refused before anything is written."""

from __future__ import annotations

import io
import tarfile

import pytest

from flywheel.server.sandbox import UnsafeArchive, extract_workspace


def tar(*members: tuple[tarfile.TarInfo, bytes | None], mode: str = "w") -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as t:
        for info, data in members:
            t.addfile(info, io.BytesIO(data) if data is not None else None)
    buf.seek(0)
    return buf


def file(name: str, data: bytes = b"x", mode: int = 0o644) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), mode
    return info, data


def special(name: str, kind: bytes, target: str = "") -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, None


def test_a_repository_unpacks(tmp_path):
    src = tar(special("pkg", tarfile.DIRTYPE), file("pkg/calc.py", b"def add(a, b):\n    return a + b\n"),
              file("tests/test_calc.py", b"from pkg.calc import add\n"), file("run.sh", b"#!/bin/sh\n", 0o4755),
              special("pkg/alias.py", tarfile.SYMTYPE, "calc.py"), special("copy.py", tarfile.LNKTYPE, "pkg/calc.py"),
              mode="w:gz")
    stats = extract_workspace(src, tmp_path / "ws")
    assert stats.files == 3
    assert (tmp_path / "ws/pkg/alias.py").read_text().startswith("def add")
    assert (tmp_path / "ws/copy.py").read_text().startswith("def add")
    assert (tmp_path / "ws/run.sh").stat().st_mode & 0o7000 == 0, "setuid bits are dropped"


HOSTILE = {
    "absolute path": [file("/etc/evil")],
    "dot-dot": [file("a/../../evil")],
    "dot-dot alone": [file("..")],
    "backslash": [file("a\\..\\evil")],
    "control character": [file("a\nb")],
    "symlink out": [special("out", tarfile.SYMTYPE, "../../etc")],
    "absolute symlink": [special("out", tarfile.SYMTYPE, "/etc/passwd")],
    "file under a symlink": [special("d", tarfile.SYMTYPE, "sub"), file("d/x")],
    "symlink chain": [special("a/b/up", tarfile.SYMTYPE, "../.."), special("a/b/up/esc", tarfile.SYMTYPE, "../x")],
    "hard link out": [special("h", tarfile.LNKTYPE, "../../etc/passwd")],
    "hard link to nothing": [special("h", tarfile.LNKTYPE, "never-added")],
    "character device": [special("dev", tarfile.CHRTYPE)],
    "block device": [special("dev", tarfile.BLKTYPE)],
    "fifo": [special("pipe", tarfile.FIFOTYPE)],
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_members_are_refused(case, tmp_path):
    dest = tmp_path / "ws"
    with pytest.raises(UnsafeArchive):
        extract_workspace(tar(*HOSTILE[case]), dest)
    assert not any(dest.iterdir()), "nothing is written when any member is refused"
    assert not (tmp_path / "evil").exists()


def test_size_and_count_limits(tmp_path):
    with pytest.raises(UnsafeArchive, match="more than 1000 bytes"):
        extract_workspace(tar(file("a", b"0" * 600), file("b", b"0" * 600)), tmp_path / "one", max_bytes=1000)
    with pytest.raises(UnsafeArchive, match="at most 3"):
        extract_workspace(tar(*[file(f"f{i}") for i in range(4)]), tmp_path / "two", max_files=3)


def test_a_compressed_bomb_is_stopped_by_the_size_limit(tmp_path):
    bomb = tar(file("zeros", b"\0" * (4 * 1024 * 1024)), mode="w:gz")
    assert len(bomb.getvalue()) < 50_000
    with pytest.raises(UnsafeArchive, match="more than"):
        extract_workspace(bomb, tmp_path / "ws", max_bytes=1024 * 1024)


def test_garbage_is_not_an_archive(tmp_path):
    with pytest.raises(UnsafeArchive, match="not a readable tar"):
        extract_workspace(io.BytesIO(b"this is not a tarball at all" * 40), tmp_path / "ws")

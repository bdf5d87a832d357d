"""A home for the Postgres cluster outside the data directory.

Used as root when user namespaces are not available and uid 65534 cannot
enter the data directory (a checkout in root's 0700 home folder): the cluster
goes to a folder of its own under /var/lib/flywheel (else the system temp
folder), owned by uid 65534 and mode 0700, below a root-owned, 0711 base. Its
path is recorded in the data directory (`RECORD`), so the next start finds it
and `make clean` removes it with the data directory.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from flywheel.server.embedded._proc import unreachable_parent

RECORD = "outside"  # in the data directory's postgres folder
PREFIX = "pg-"  # `make clean` removes only a recorded path like */flywheel/pg-*


def bases() -> list[Path]:
    # /var/lib first: the system temp folder may be emptied at boot, with the data in it.
    return [Path("/var/lib/flywheel"), Path(tempfile.gettempdir()) / "flywheel"]


def recorded(home: Path) -> Path | None:
    """The cluster folder recorded for this data directory, if any."""
    try:
        return Path((home / RECORD).read_text().strip())
    except FileNotFoundError:
        return None


def create(home: Path, uid: int, gid: int) -> Path | None:
    """A new cluster folder for `home` (recorded there), or None when no base will do."""
    for base in bases():
        if _usable_base(base, uid, gid):
            break
    else:
        return None
    folder = Path(tempfile.mkdtemp(prefix=PREFIX, dir=base))  # 0700, ours until chowned below
    (folder / "data-dir").write_text(f"{home}\n")  # for whoever finds it in the base
    for path in (folder, folder / "data-dir"):
        os.chown(path, uid, gid)
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    (home / RECORD).write_text(f"{folder}\n")
    return folder


def _usable_base(base: Path, uid: int, gid: int) -> bool:
    """Made (or found) as a root-owned folder no one else can write, that `uid` can traverse."""
    try:
        try:
            base.mkdir(mode=0o711)
            base.chmod(0o711)  # whatever the umask
        except FileExistsError:
            pass
        st = base.lstat()
    except OSError:  # a read-only /var, say
        return False
    # One someone else made (in a shared /tmp) could be swapped under us.
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != 0 or st.st_mode & 0o022:
        return False
    return unreachable_parent(base, uid, gid) is None

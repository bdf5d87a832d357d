"""Who the embedded Postgres runs as when Flywheel runs as root, and how.

Postgres refuses to run as root. The ways around that, best first:

- "userns": in a user namespace of its own (`unshare --user`, util-linux
  2.38+) where root outside is uid 65534 inside. initdb and postgres see a
  non-root user without capabilities; on disk their files are root's, so the
  cluster can live wherever root can go (a checkout in a 0700 home folder).
  The price: Postgres keeps root's rights over root-owned files (not its
  capabilities), where "setpriv" leaves it nobody's.
- "setpriv": as the real uid/gid 65534 ("nobody") without capabilities and
  with no_new_privs; its cluster must be somewhere that user can reach.

Docker's default seccomp profile forbids user namespaces, so "userns" is
probed (once per process: one `unshare ... id`, ~9 ms) before it is offered.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from flywheel.server.embedded._proc import running_as_root, unreachable_parent

NOBODY = 65534  # on Debian and in the usual base images; initdb needs the uid to have a name


@dataclass(frozen=True)
class RunAs:
    way: str  # "self" (not root), "userns" or "setpriv"
    uid: int  # who owns the cluster's files on disk
    gid: int
    prefix: tuple[str, ...] = ()

    def command(self, args: list[str]) -> list[str]:
        return [*self.prefix, *args]

    def blocked_at(self, path: Path) -> Path | None:
        """The first folder on the way to `path` this user cannot traverse (never for "self")."""
        return None if self.way == "self" else unreachable_parent(path, self.uid, self.gid)


USERNS = RunAs("userns", 0, 0, ("unshare", "--user", f"--map-user={NOBODY}", f"--map-group={NOBODY}", "--"))
SETPRIV = RunAs("setpriv", NOBODY, NOBODY, ("setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                                            "--inh-caps=-all", "--no-new-privs", "--"))


@functools.cache
def userns_works() -> bool:
    """Whether USERNS can run a program here (util-linux 2.38+, and no seccomp profile or
    sysctl forbidding user namespaces), as a user that has a name."""
    if shutil.which("unshare") is None:
        return False
    try:
        probe = subprocess.run(USERNS.command(["id", "-un"]), capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def ways() -> list[RunAs]:
    """The ways open to this process, best first."""
    if not running_as_root():
        return [RunAs("self", os.getuid(), os.getgid())]
    return [USERNS, SETPRIV] if userns_works() else [SETPRIV]

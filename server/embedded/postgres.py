"""Embedded Postgres, run from the `pgserver` wheel's bundled binaries
(or the system's PostgreSQL when that wheel is absent).

We drive `initdb` / `pg_ctl` ourselves instead of pgserver's Python helper:
as root, that helper creates a system user and opens permissions on every
parent folder, which we must not do.

Layout of the cluster folder (all of it owned by the user Postgres runs as):
    data/       PGDATA
    run/        unix socket and TMPDIR
    postgres.log
The cluster folder is the data directory's `services/postgres`, except as
root when neither way in runas.py can reach it: then it is a folder of its
own outside (outside.py). Postgres listens on a unix socket in `run/` (trust
auth, reachable only by its user and root); when that path is too long for a
socket, on a free 127.0.0.1 port with a generated password instead.
"""

from __future__ import annotations

import asyncio
import glob
import importlib.util
import os
import shutil
import subprocess
import time
from pathlib import Path
from urllib.parse import quote

import asyncpg
import structlog

from flywheel.server.embedded import outside
from flywheel.server.embedded._proc import (
    MAX_SOCKET_PATH,
    free_port,
    read_owner,
    running_as_root,
    secret_file,
    write_owner,
)
from flywheel.server.embedded.errors import EmbeddedError, UnreachableDataDir
from flywheel.server.embedded.runas import SETPRIV, RunAs, ways

log = structlog.get_logger("flywheel.embedded")

SOCKET_PORT = 5432  # only names the socket file in unix-socket mode


def find_pg_install() -> Path:
    """The folder holding bin/initdb: pgserver's bundled build, else the system's newest."""
    spec = importlib.util.find_spec("pgserver")  # not imported: only its files are used
    if spec is not None and spec.submodule_search_locations:
        bundled = Path(next(iter(spec.submodule_search_locations))) / "pginstall"
        if (bundled / "bin" / "initdb").exists():
            return bundled
    system = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if system:
        return Path(system[-1]).parent.parent
    raise EmbeddedError("no PostgreSQL binaries found: install Flywheel with its dependencies "
                        "(the pgserver wheel) or set DATABASE_URL to an existing server")


class EmbeddedPostgres:
    def __init__(self, root: Path, *, database: str = "flywheel") -> None:
        self.home = Path(root).resolve()  # in the data directory
        self.root = self.home  # the cluster folder: moved outside by _place() when it must be
        self.database = database
        self.runas: RunAs = ways()[0]
        self.port: int | None = None
        self._password_file = self.home.parent / "postgres.password"  # outside PGDATA, 0600, ours
        self._install: Path | None = None
        self.started_here = False

    # -- paths and commands -------------------------------------------------

    @property
    def pgdata(self) -> Path:
        return self.root / "data"

    @property
    def run_dir(self) -> Path:
        return self.root / "run"

    @property
    def logfile(self) -> Path:
        return self.root / "postgres.log"

    @property
    def use_socket(self) -> bool:
        return len(str(self.run_dir / f".s.PGSQL.{SOCKET_PORT}")) <= MAX_SOCKET_PATH

    @property
    def dsn(self) -> str:
        if self.use_socket:
            return f"postgresql://postgres@/{self.database}?host={quote(str(self.run_dir))}"
        password = quote(secret_file(self._password_file))
        return f"postgresql://postgres:{password}@127.0.0.1:{self.port}/{self.database}"

    def _bin(self, name: str) -> str:
        assert self._install is not None
        return str(self._install / "bin" / name)

    def _run(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TMPDIR": str(self.run_dir),
               "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8", "HOME": str(self.root)}
        # A new session: Ctrl-C in the terminal reaches Flywheel, which then
        # stops Postgres in order, instead of Postgres dying first.
        result = subprocess.run(self.runas.command(list(args)), env=env, cwd=self.root, capture_output=True,
                                text=True, timeout=timeout, start_new_session=True)
        if check and result.returncode != 0:
            raise EmbeddedError(f"{Path(args[0]).name} failed ({result.returncode}): "
                                f"{(result.stderr or result.stdout).strip()[-2000:]}\nlog: {self.logfile}")
        return result

    # -- where the cluster lives and who runs it ----------------------------

    def _place(self) -> None:
        """Pick the way Postgres runs and its cluster folder; logged in one line."""
        self.runas, self.root = self._choose()
        log.info("embedded Postgres: how it runs, and where", runs_as=self.runas.way, uid=self.runas.uid,
                 cluster=str(self.root))

    def _choose(self) -> tuple[RunAs, Path]:
        recorded = outside.recorded(self.home) if running_as_root() else None
        if recorded is not None:  # put there for SETPRIV, and kept there
            if not recorded.exists():  # a temp folder emptied at boot, say
                log.warning("the recorded cluster folder is gone: starting a new cluster there", cluster=str(recorded))
            return SETPRIV, recorded
        options = self._ways_for_the_cluster_here()
        for runas in options:
            if runas.blocked_at(self.home.parent) is None:
                return runas, self.home
        # A new cluster may live outside; one already here is not replaced by an empty one.
        if SETPRIV in options and not (self.home / "data" / "PG_VERSION").exists():
            folder = outside.create(self.home, SETPRIV.uid, SETPRIV.gid)
            if folder is not None:
                return SETPRIV, folder
        blocked = options[-1].blocked_at(self.home.parent)
        raise UnreachableDataDir(
            f"embedded Postgres refuses root and runs as uid {SETPRIV.uid}, which cannot enter {blocked}, "
            f"and neither a user namespace nor (for a new cluster) a folder of its own under "
            f"{' or '.join(map(str, outside.bases()))} "
            f"could be used: set it to a folder outside {blocked}, "
            f"or set DATABASE_URL to an existing server")

    def _ways_for_the_cluster_here(self) -> list[RunAs]:
        """ways(), the one that made the cluster in the data directory (if any) first: a
        cluster changes hands (chown, in _own) only when that way cannot run it any more."""
        try:
            owner = (self.home / "data").stat().st_uid
        except FileNotFoundError:
            return ways()
        return sorted(ways(), key=lambda runas: runas.uid != owner)

    def _prepare_dirs(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.run_dir.mkdir(exist_ok=True, mode=0o700)
        if running_as_root():
            self._own()

    def _own(self) -> None:
        """Give the cluster folder to the user Postgres runs as: all of it when another way
        made it (as uid 65534, in a folder since moved under a 0700 one), else what we create."""
        uid, gid = self.runas.uid, self.runas.gid
        if self.pgdata.exists() and self.pgdata.stat().st_uid != uid:
            log.info("embedded Postgres: handing the cluster to the user it now runs as",
                     cluster=str(self.root), uid=uid)
            _chown_tree(self.root, uid, gid)
            return
        for path in (self.root, self.run_dir, self.logfile):
            if path.exists():
                os.chown(path, uid, gid)

    def _prepare_install(self) -> None:
        """Use the binaries in place when the Postgres user can reach them;
        otherwise (a virtualenv under /root, say) keep a private copy in the cluster folder."""
        install = find_pg_install()
        if self.runas.blocked_at(install / "bin") is not None:
            install = _private_copy(install, self.root / "pgcopy", self.runas.uid, self.runas.gid)
        self._install = install

    # -- lifecycle ----------------------------------------------------------

    @property
    def _owner_file(self) -> Path:
        return self.home.parent / "postgres.owner"  # ours (not the Postgres user's)

    def _pid_info(self) -> list[str] | None:
        try:
            return (self.pgdata / "postmaster.pid").read_text().splitlines()
        except (FileNotFoundError, PermissionError):
            return None

    def is_running(self) -> bool:
        if self._install is None or not (self.pgdata / "PG_VERSION").exists():
            return False
        return self._run(self._bin("pg_ctl"), "status", "-D", str(self.pgdata), check=False).returncode == 0

    def initdb(self) -> None:
        if (self.pgdata / "PG_VERSION").exists():
            return
        if self.pgdata.exists():  # a half-finished initdb: start over
            shutil.rmtree(self.pgdata)
        pwfile = self.run_dir / "initdb.pw"
        pwfile.write_text(secret_file(self._password_file))
        try:
            if running_as_root():
                os.chown(pwfile, self.runas.uid, self.runas.gid)
            self._run(self._bin("initdb"), "-D", str(self.pgdata), "-U", "postgres", "-E", "UTF8", "--no-locale",
                      "--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={pwfile}")
        finally:
            pwfile.unlink(missing_ok=True)

    def start(self) -> None:
        self._place()
        self._prepare_dirs()
        self._prepare_install()
        self.initdb()
        if self.is_running():
            info = self._pid_info() or []
            self.port = int(info[3]) if len(info) > 3 else None
            # Running for a live Flywheel process (an admin command beside
            # `flywheel up`): share it. Left by a process that died: adopt it,
            # so that it is stopped with us. (No second server can start on
            # this PGDATA: postmaster.pid locks it, so none is stopped here.)
            owner = read_owner(self._owner_file)
            self.started_here = owner is None or not owner.alive
            if self.started_here:
                log.warning("adopting an embedded Postgres left running by a dead process",
                            pgdata=str(self.pgdata), owner=owner.pid if owner else None)
        else:
            if self.use_socket:
                self.port = SOCKET_PORT
                opts = f"-p {SOCKET_PORT} -k {self.run_dir} -c listen_addresses=''"
            else:
                self.port = free_port()
                opts = f"-p {self.port} -k '' -c listen_addresses=127.0.0.1"
            self._run(self._bin("pg_ctl"), "start", "-D", str(self.pgdata), "-l", str(self.logfile), "-w",
                      "-t", "60", "-o", opts)
            self.started_here = True
        if self.started_here:
            write_owner(self._owner_file)
        asyncio.run(self._ensure_database())

    async def _ensure_database(self) -> None:
        admin = self.dsn.replace(f"/{self.database}", "/postgres", 1)
        deadline = time.monotonic() + 30
        while True:
            try:
                conn = await asyncpg.connect(admin, timeout=5)
                break
            except (OSError, asyncpg.CannotConnectNowError):
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)
        try:
            if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", self.database):
                await conn.execute(f'CREATE DATABASE "{self.database}"')
        finally:
            await conn.close()

    def stop(self) -> None:
        # A server we found running belongs to another process (`flywheel up`
        # while an admin command runs): leave it alone.
        if not self.started_here or self._install is None:
            return
        # "fast": roll back open transactions, checkpoint, exit. Nothing committed is lost.
        self._run(self._bin("pg_ctl"), "stop", "-D", str(self.pgdata), "-m", "fast", "-w", "-t", "60", check=False)
        self.started_here = False


def _private_copy(install: Path, dest: Path, uid: int, gid: int) -> Path:
    """A copy of `install` under `dest`, owned by uid/gid. pgserver's binaries find their
    libraries at $ORIGIN/../../../pgserver.libs (the wheel's RPATH), so the copy keeps that layout."""
    package = install.parent
    copy, done = dest / package.name / install.name, dest / "copied"
    if not done.exists():  # a copy interrupted half-way is finished, not used
        shutil.copytree(install, copy, symlinks=True, dirs_exist_ok=True)
        libs = package.parent / f"{package.name}.libs"
        if libs.is_dir():
            shutil.copytree(libs, dest / libs.name, symlinks=True, dirs_exist_ok=True)
        _chown_tree(dest, uid, gid)
        done.touch()
    return copy


def _chown_tree(path: Path, uid: int, gid: int) -> None:
    for dirpath, dirnames, filenames in os.walk(path):
        os.chown(dirpath, uid, gid)
        for name in dirnames + filenames:
            os.lchown(os.path.join(dirpath, name), uid, gid)

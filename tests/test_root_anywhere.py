"""`flywheel up` with nothing configured, from a checkout in a private (0700) home folder.

What a new user does on a fresh VM or in a container: as root, clone into
root's home and `make up`. Here: a copy of the working tree (the files
`git ls-files` lists, committed or not: what a clone of this commit would
hold) in `<home>/flywheel`, imported from there (PYTHONPATH), with the
pgserver wheel's files in that checkout's `.venv`, where `make install` puts
them. HOME is the 0700 folder, the working directory is the checkout and the
data directory is the default `./.flywheel`. The other packages (Litestar,
asyncpg...) come from the venv running the tests: root reads them wherever
they are, so they do not decide where Postgres can run; the Postgres binaries
do, and they are in the home folder.

Run twice: as the machine allows (a user namespace where there are any), and
under Docker's seccomp rules for user namespaces (no_userns.py), where the
cluster goes to a folder of its own outside the home folder. Not as root,
both runs check the plain path: Postgres as the current user, in place.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from flywheel.server.embedded import outside
from flywheel.server.embedded.runas import NOBODY, userns_works
from flywheel.server.testing.live import free_port
from tests.up_process import start_up

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
FLYWHEEL = str(Path(sys.executable).parent / "flywheel")
NO_USERNS = [sys.executable, str(Path(__file__).with_name("no_userns.py"))]


def _checkout(home: Path) -> Path:
    """The working tree, copied file by file (as a clone would have it, plus uncommitted changes)."""
    listed = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            capture_output=True, check=True).stdout.decode().split("\0")
    checkout = home / "flywheel"
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():  # listed but deleted in the working tree: not copied
            (checkout / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, checkout / name)
    return checkout


def _install_pgserver(checkout: Path) -> Path:
    """pgserver's files (package and bundled libraries) where `make install` would put them."""
    site = checkout / ".venv" / "lib" / "python3.11" / "site-packages"
    site.mkdir(parents=True)
    spec = importlib.util.find_spec("pgserver")
    if spec is not None and spec.submodule_search_locations:
        package = Path(next(iter(spec.submodule_search_locations)))
        for folder in (package, package.with_name(f"{package.name}.libs")):
            if folder.is_dir():
                shutil.copytree(folder, site / folder.name, symlinks=True)
    return site


class Machine:
    """The fresh machine: a 0700 home with a checkout in it, and how commands run there."""

    def __init__(self, home: Path, *, seccomp: bool) -> None:
        self.home, self.prefix = home, NO_USERNS if seccomp else []
        self.checkout = _checkout(home)
        site = _install_pgserver(self.checkout)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = home / "up.log"
        # Nothing configured: no DATABASE_URL, REDIS_URL or FLYWHEEL_* (the port aside, to run beside others).
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith("FLYWHEEL_") and k not in ("DATABASE_URL", "REDIS_URL", "PYTHONPATH")}
        self.env.update(HOME=str(home), FLYWHEEL_PORT=str(self.port), PYTHONPATH=f"{home}{os.pathsep}{site}")

    def run(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*self.prefix, *args], cwd=self.checkout, env=self.env, capture_output=True,
                              text=True, timeout=180)

    def up(self) -> subprocess.Popen:
        return start_up([*self.prefix, FLYWHEEL, "up"], self.url, self.log, self.env, cwd=self.checkout)

    @property
    def postgres_home(self) -> Path:
        return self.checkout / ".flywheel" / "services" / "postgres"

    def folders(self) -> list[Path]:
        """Where Flywheel's processes may work: the home folder, and a cluster recorded outside it."""
        return [self.home, *filter(None, [outside.recorded(self.postgres_home)])]

    def processes(self) -> list[str]:
        """Live processes whose command line or working directory is in one of folders()."""
        folders = [str(f) for f in self.folders()]
        found = []
        for entry in Path("/proc").iterdir():
            try:
                args = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
                cwd = os.readlink(entry / "cwd")
                state = (entry / "stat").read_text().rpartition(")")[2].split()[0]
            except (OSError, ValueError):
                continue
            if entry.name.isdigit() and state != "Z" and any(f in args or cwd.startswith(f) for f in folders):
                found.append(f"{entry.name}: {args}")
        return found


def _interrupt(proc: subprocess.Popen, machine: Machine) -> None:
    proc.send_signal(signal.SIGINT)  # Ctrl-C
    try:
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code == 0, machine.log.read_text()[-3000:]
    deadline = time.monotonic() + 10  # the last Postgres children may take a moment to exit
    while machine.processes() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not machine.processes(), "nothing is left running"


def _expected_way(seccomp: bool) -> str:
    if os.geteuid() != 0:
        return "self"
    return "userns" if userns_works() and not seccomp else "setpriv"


def _assert_cluster_where_expected(machine: Machine, way: str) -> None:
    recorded = outside.recorded(machine.postgres_home)
    if way == "setpriv":  # uid 65534 cannot enter the home folder: the cluster is outside it
        assert recorded is not None and recorded.parent in outside.bases(), recorded
        assert recorded.stat().st_uid == NOBODY and (recorded / "data" / "PG_VERSION").exists()
    else:  # in place, owned on disk by whoever runs Flywheel (root, for a user namespace)
        assert recorded is None
        assert (machine.postgres_home / "data").stat().st_uid == os.geteuid()


@pytest.mark.parametrize("seccomp", [False, True], ids=["as-the-machine-allows", "docker-seccomp"])
def test_up_from_a_checkout_in_a_private_home(tmp_path, seccomp):
    if seccomp and os.geteuid() == 0:
        from no_userns import supported

        assert supported(), "no_userns.py knows the syscall numbers of this machine"
    home = tmp_path / "root-home"
    home.mkdir(mode=0o700)
    machine = Machine(home, seccomp=seccomp)
    modes = {p: (p.stat().st_mode, p.stat().st_uid) for p in (home, machine.checkout)}
    way = _expected_way(seccomp)
    imported = machine.run(sys.executable, "-c", "import flywheel.server.embedded as e; print(e.__file__)")
    assert imported.stdout.startswith(str(machine.checkout)), "the checkout's code is what runs"
    procs: list[subprocess.Popen] = []
    try:
        procs.append(machine.up())
        assert re.search(rf"runs_as\W+{way}\b", machine.log.read_text()), "the way Postgres runs is logged"
        created = machine.run(FLYWHEEL, "tenants", "create", "root-home")  # beside `up`: shares its servers
        assert created.returncode == 0, created.stderr
        _interrupt(procs[-1], machine)
        _assert_cluster_where_expected(machine, way)

        procs.append(machine.up())
        again = machine.run(FLYWHEEL, "tenants", "create", "root-home")
        assert again.returncode == 1 and "already exists" in again.stdout + again.stderr, "the data was reused"
        assert httpx.get(f"{machine.url}/readyz").status_code == 200
        _interrupt(procs[-1], machine)
        assert {p: (p.stat().st_mode, p.stat().st_uid) for p in modes} == modes, "no permissions changed"

        cluster = outside.recorded(machine.postgres_home) or machine.postgres_home
        cleaned = machine.run("make", "clean")
        assert cleaned.returncode == 0, cleaned.stderr
        assert not (machine.checkout / ".flywheel").exists() and not cluster.exists(), "make clean removes it all"
    finally:
        _clean_up_after_a_failure(machine, procs)


def _clean_up_after_a_failure(machine: Machine, procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
    for line in machine.processes():  # a Postgres that outlived a killed `up`
        os.kill(int(line.split(":")[0]), signal.SIGINT)
    for folder in machine.folders()[1:]:  # never left in /var/lib/flywheel by a failed run
        shutil.rmtree(folder, ignore_errors=True)

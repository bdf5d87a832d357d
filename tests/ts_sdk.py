"""What tests/test_sdk_typescript.py needs around the TypeScript SDK (sdks/typescript).

- `build_sdk()`: `npm ci` when node_modules is missing, then `npm run build` and the
  compile-time API checks, once per session.
- `run_node()`: one `node --test` file, with the server's URL and a tenant's key in its
  environment; its report of sent event ids is checked against the database by the test.
- `Restartable`: a Flywheel that the Node tests can really stop and start again (uvicorn
  on a fixed port, a fresh app each time), driven over HTTP by `Control` (POST /stop,
  POST /start), so "the server is down" means nothing listens on the port.
- `PageServer`: serves a test page and the built SDK (dist/) to Chromium, and forwards
  `POST /v1/events` on the same origin to Flywheel, or resets the connection while
  `down` (the API unreachable, the page itself still served).
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from flywheel.server.testing.live import LiveServer, free_port

REPO = Path(__file__).resolve().parents[1]
SDK = REPO / "sdks" / "typescript"
NPM_TIMEOUT_S = 600


def npm(*args: str, timeout: float = NPM_TIMEOUT_S) -> subprocess.CompletedProcess:
    npm_bin = shutil.which("npm")
    assert npm_bin, "npm is not installed (Node 18+ with npm is needed for the TypeScript SDK's tests)"
    return subprocess.run([npm_bin, *args], cwd=SDK, capture_output=True, text=True, timeout=timeout)


def build_sdk() -> None:
    """Install the pinned dev dependencies if missing, build dist/ and check the public types."""
    steps = ([["ci", "--no-audit", "--no-fund"]] if not (SDK / "node_modules").is_dir() else [])
    for step in [*steps, ["run", "build"], ["run", "check-api"]]:
        done = npm(*step)
        assert done.returncode == 0, f"npm {' '.join(step)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


def run_node(test_file: str, env: dict[str, str], timeout: float = 240) -> subprocess.CompletedProcess:
    """`node --test test/<file>` in the SDK folder; its output is in the assertion message on failure."""
    node = shutil.which("node")
    assert node, "node is not installed"
    return subprocess.run([node, "--test", "--test-reporter=spec", f"test/{test_file}"], cwd=SDK,
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=timeout)


def read_report(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


class Restartable:
    """Flywheel on a fixed port that can be stopped (nothing listens) and started again."""

    def __init__(self, make_app) -> None:
        self.make_app = make_app
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.live: LiveServer | None = None
        self.starts = 0
        self.lock = threading.Lock()

    def start(self) -> None:
        with self.lock:
            if self.live is None:
                self.live = LiveServer(self.make_app(), port=self.port).__enter__()
                self.starts += 1

    def stop(self) -> None:
        with self.lock:
            if self.live is not None:
                self.live.__exit__(None, None, None)
                self.live = None


class Control:
    """`POST /stop` and `POST /start` on a Restartable, for a test in another process."""

    def __init__(self, server: Restartable) -> None:
        self.server = server
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.calls: list[str] = []
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _handler(self):
        control = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                action = {"/stop": control.server.stop, "/start": control.server.start}.get(self.path)
                if action is None:
                    self.send_error(404)
                    return
                action()
                control.calls.append(self.path)
                self.send_response(204)
                self.end_headers()

        return Handler


PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>SDK test page</title></head>
<body><p id="state">loading</p>
<script type="module">
  import { Client, IndexedDBStore, LocalStorageStore, browserBuffer } from "/dist/index.js";
  const params = new URLSearchParams(location.search);
  const stores = { auto: () => browserBuffer("test"), indexeddb: () => new IndexedDBStore("test"),
                   localstorage: () => new LocalStorageStore("test") };
  window.store = stores[params.get("store")]();
  window.fw = new Client({ url: location.origin, apiKey: params.get("key"), buffer: window.store,
                           flushIntervalMs: Number(params.get("interval") ?? 200), maxRetries: 0,
                           backoffMs: 50, maxBackoffMs: 200 });
  window.fw.ready.then(() => { document.getElementById("state").textContent = "ready"; });
</script></body></html>
"""


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        pass  # a connection the test reset on purpose


class PageServer:
    """The test page, dist/, and `POST /v1/events` forwarded to Flywheel (reset while `down`)."""

    def __init__(self, target: str) -> None:
        self.target = urlsplit(target)
        self.down = False
        self.posts: list[tuple[str, int, str]] = []  # (what happened, events in the batch, Idempotency-Key)
        self.httpd = _QuietServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _forward(self, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection(self.target.hostname, self.target.port, timeout=30)
        try:
            conn.request("POST", "/v1/events", body=body, headers=headers)
            answer = conn.getresponse()
            return answer.status, answer.read()
        finally:
            conn.close()

    def _handler(self):
        pages = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                path = urlsplit(self.path).path
                if path == "/":
                    self._answer(200, PAGE.encode(), "text/html; charset=utf-8")
                elif path == "/other":
                    self._answer(200, b"<!doctype html><title>elsewhere</title><p>elsewhere</p>", "text/html")
                elif path.startswith("/dist/") and ".." not in path:
                    file = SDK / path.lstrip("/")
                    if file.is_file():
                        kind = "text/javascript" if file.suffix == ".js" else "application/json"
                        self._answer(200, file.read_bytes(), kind)
                    else:
                        self._answer(404, b"not found", "text/plain")
                else:
                    self._answer(404, b"not found", "text/plain")

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                count, key = len(json.loads(body)), self.headers.get("Idempotency-Key", "")
                if pages.down or self.path != "/v1/events":
                    pages.posts.append(("reset", count, key))
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)  # the API is unreachable: no answer at all
                    return
                headers = {name: value for name, value in self.headers.items()
                           if name.lower() in ("authorization", "content-type", "idempotency-key")}
                status, content = pages._forward(body, headers)
                pages.posts.append(("forwarded", count, key))
                self._answer(status, content, "application/json")

            def _answer(self, status: int, content: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(content)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(content)

        return Handler

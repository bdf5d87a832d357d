"""`flywheel up` as a process of its own, for tests that start the real thing."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx


def start_up(cmd: list[str], url: str, log: Path, env: dict[str, str], cwd: Path | None = None,
             timeout: float = 120) -> subprocess.Popen:
    """Start `cmd` (a `flywheel up`), its output appended to `log`, and return once `url`/healthz says 200."""
    with log.open("a") as out:  # a file, not a pipe: nobody reads it while it runs
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=out)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"flywheel up exited early: {log.read_text()[-3000:]}"
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"flywheel up did not answer /healthz: {log.read_text()[-3000:]}")

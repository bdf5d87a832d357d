"""Servers a benchmark starts as processes of their own: waiting until they answer, stopping them."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable

import httpx


def wait_until_serving(url: str, proc: subprocess.Popen, output: Callable[[], str] = lambda: "",
                       timeout: float = 60) -> None:
    """Return once `url` answers below 500; raise with the server's `output()` if it exits or stays silent."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: the server exited:\n{output()}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s:\n{output()}")


def piped_stderr(proc: subprocess.Popen) -> Callable[[], str]:
    """`output` for a server whose stderr is a text pipe: read once it has exited (reading a
    live server's pipe would wait for it to end)."""
    return lambda: proc.stderr.read() if proc.stderr and proc.poll() is not None else ""


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM (a server flushes what it holds), then SIGKILL after 30 s; reaped either way."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

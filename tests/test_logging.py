"""Log lines: one format for Flywheel's and every library's, and never through a progress bar."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest
import structlog
from rich.console import Console
from rich.progress import Progress

from flywheel.server.settings import load_settings
from flywheel.server.telemetry import configure_logging

FLYWHEEL = str(Path(sys.executable).parent / "flywheel")


@pytest.fixture
def logging_restored():
    """configure_logging changes process-wide state: put it back for the other tests."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    config = structlog.get_config()
    yield
    root.handlers, root.level = handlers, level
    structlog.configure(**config)


def test_json_logs_cover_flywheel_uvicorn_and_arq(logging_restored, capsys):
    configure_logging(msgspec.structs.replace(load_settings({}), log_json=True))
    structlog.get_logger("flywheel.test").info("flywheel line", job="a")
    logging.getLogger("uvicorn.error").warning("uvicorn line")
    logging.getLogger("arq.worker").warning("arq line %s", 7)
    logging.getLogger("arq.worker").info("arq chatter")  # libraries: WARNING and up only
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [(line["event"], line["level"], line["logger"]) for line in lines] == [
        ("flywheel line", "info", "flywheel.test"), ("uvicorn line", "warning", "uvicorn.error"),
        ("arq line 7", "warning", "arq.worker")]
    assert lines[0]["job"] == "a" and all("timestamp" in line for line in lines)


def test_the_level_applies_to_flywheel_loggers(logging_restored, capsys):
    configure_logging(msgspec.structs.replace(load_settings({}), log_json=True, log_level="WARNING"))
    structlog.get_logger("flywheel.test").info("hidden")
    logging.getLogger("flywheel.server.x").info("hidden too")
    structlog.get_logger("flywheel.test").warning("shown")
    assert [json.loads(line)["event"] for line in capsys.readouterr().err.splitlines()] == ["shown"]


def test_a_log_line_goes_above_a_progress_bar(logging_restored, capsys):
    """rich swaps sys.stderr for its proxy while a bar shows; the handler writes to the proxy."""
    configure_logging(msgspec.structs.replace(load_settings({}), log_json=True))
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=300)
    with Progress(console=console, transient=False) as progress:
        task = progress.add_task("importing", total=10)
        progress.update(task, advance=5)
        structlog.get_logger("flywheel.test").warning("in the middle")
        progress.update(task, advance=5)
    assert "in the middle" not in capsys.readouterr().err  # not written past the bar to the real stderr
    shown = screen.getvalue()
    line = next(part for part in shown.splitlines() if "in the middle" in part)
    assert json.loads(line[line.index("{"):line.rindex("}") + 1])["event"] == "in the middle"  # one whole line


def test_a_command_logs_json_lines_only(flywheel_settings):
    """A real command with FLYWHEEL_LOG_JSON=1: every line on stderr parses as JSON."""
    env = {**os.environ, "DATABASE_URL": flywheel_settings.database_url, "REDIS_URL": flywheel_settings.redis_url,
           "FLYWHEEL_DATA_DIR": flywheel_settings.data_dir, "FLYWHEEL_LOG_JSON": "1", "FLYWHEEL_LOG_LEVEL": "DEBUG",
           "FLYWHEEL_QUEUE": "logging-test-queue"}
    result = subprocess.run([FLYWHEEL, "worker", "--burst"], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines, "the worker says something at DEBUG"
    assert all(isinstance(json.loads(line), dict) for line in lines), result.stderr


def test_building_the_app_keeps_the_log_format(logging_restored, capsys, flywheel_settings):
    """Litestar configures logging of its own unless told not to: the app must leave ours alone."""
    from flywheel.server.app import create_app

    configure_logging(msgspec.structs.replace(flywheel_settings, log_json=True))
    create_app(flywheel_settings)
    logging.getLogger("uvicorn.error").warning("after the app")
    assert json.loads(capsys.readouterr().err.splitlines()[-1])["event"] == "after the app"

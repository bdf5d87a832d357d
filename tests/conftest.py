"""Flywheel's own tests use the same fixtures it ships to plugin authors
(flywheel.server.testing.pytest_plugin, loaded through its pytest11 entry
point), plus a few of their own below."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# The rlaas gateway's tests run their OpenAI-compatible upstreams on loopback, which the
# upstream allow-list refuses unless named (read once per app, at its startup).
os.environ.setdefault("FLYWHEEL_RLAAS_UPSTREAM_HOSTS", "*,127.0.0.1")
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real sample data beside the clone (never committed into the project)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"sample data not found at {SHARED_DATA}: these tests need ../shared/data beside the clone")
    return SHARED_DATA


@pytest.fixture
def open_tmp() -> Path:
    """A temp folder others may traverse (0711), for embedded Postgres: as root
    it runs unprivileged and cannot enter pytest's own 0700 temp folders."""
    path = Path(tempfile.mkdtemp(prefix="flywheel-test-"))
    path.chmod(0o711)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """Where tests keep files worth looking at afterwards (screenshots, reports)."""
    path = REPO / "test-artifacts"
    path.mkdir(exist_ok=True)
    return path


def pytest_configure(config):
    """Spans go to an in-memory exporter for the whole session (the global
    tracer provider can be set only once per process)."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    global SPANS
    SPANS = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(SPANS))
    trace.set_tracer_provider(provider)


SPANS = None


@pytest.fixture
def spans():
    """The session's span exporter, emptied for this test."""
    SPANS.clear()
    return SPANS


@pytest.fixture(scope="session")
def s3_server():
    """A real S3-compatible server (SeaweedFS) for this session."""
    from s3_server import SeaweedS3

    server = SeaweedS3()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def shots(artifacts_dir, request) -> Path:
    """The screenshot folder of one test module: test-artifacts/console for test_console.py."""
    folder = artifacts_dir / request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
    folder.mkdir(exist_ok=True)
    return folder

"""The example `flywheel traces submit-example` sends: a small buggy repository and the story of its fix.

`stats.mean` divides by `len(xs) - 1`; the developer reproduces the bug with
a failing test, finds the cause, fixes one line, sees the tests pass and
commits. The workspace tarball is the fixed repository, so QA's re-run
passes. Chunks are sent out of order, one twice, to show both are safe.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
import uuid
from datetime import UTC, datetime, time, timedelta
from uuid import UUID

from flywheel.plugins.traces import artifacts, capture, finalize, traces
from flywheel.plugins.traces.contracts import Chunk, Finalize, TraceCreate, TraceRead
from flywheel.plugins.traces.events import CmdRun, Commit, FileEdit, RationaleNote, TestRun
from flywheel.server.plugin_api import AppState

REPOSITORY = "example/stats"
BUGGY = "def mean(xs):\n    return sum(xs) / (len(xs) - 1)\n"
FIXED = "def mean(xs):\n    return sum(xs) / len(xs)\n"
TESTS = ("from stats import mean\n\n\ndef test_mean_of_two():\n    assert mean([2, 4]) == 3\n\n\n"
         "def test_mean_of_one():\n    assert mean([5]) == 5\n")
DIFF = ("--- a/stats.py\n+++ b/stats.py\n@@ -1,2 +1,2 @@\n def mean(xs):\n"
        "-    return sum(xs) / (len(xs) - 1)\n+    return sum(xs) / len(xs)\n")


def workspace_tarball(source: str = FIXED) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, text in (("stats.py", source), ("test_stats.py", TESTS)):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def story(start: datetime | None = None) -> list:
    # Yesterday morning by default: the events table refuses events older than its partitions.
    t0 = start or datetime.combine(datetime.now(UTC).date() - timedelta(days=1), time(9), tzinfo=UTC)

    def at(minutes: float) -> dict:
        return {"event_id": uuid.uuid4(), "ts": t0 + timedelta(minutes=minutes)}

    out = "FAILED test_stats.py::test_mean_of_two - assert 8.0 == 3\nFAILED test_stats.py::test_mean_of_one"
    return [
        RationaleNote(**at(0), seq=1, kind="hypothesis", text="mean() looks wrong for short lists; reproduce first."),
        CmdRun(**at(1), seq=2, command="python3 -m pytest -q", exit_code=1, duration_ms=410, output=out),
        TestRun(**at(1.1), seq=3, command="python3 -m pytest -q", passed=0, failed=1, errors=1, duration_ms=400,
                failing=["test_stats.py::test_mean_of_two", "test_stats.py::test_mean_of_one"]),
        RationaleNote(**at(3), seq=4, kind="root_cause",
                      text="mean divides by len(xs) - 1, the sample-variance denominator, instead of len(xs): "
                           "off by one for every list and a ZeroDivisionError for a single value."),
        FileEdit(**at(4), seq=5, path="stats.py", diff=DIFF, lines_added=1, lines_removed=1),
        CmdRun(**at(5), seq=6, command="python3 -m pytest -q", exit_code=0, duration_ms=390, output="2 passed"),
        TestRun(**at(5.1), seq=7, command="python3 -m pytest -q", passed=2, duration_ms=380),
        Commit(**at(6), seq=8, sha="3f2a9c1d7e5b", message="Fix mean(): divide by len(xs)", files=["stats.py"]),
        RationaleNote(**at(6.5), seq=9, kind="reflection",
                      text="Both tests cover the bug: the two-value case and the single-value crash."),
    ]


async def submit_example(state: AppState, tenant_id: UUID, *, queue_qa: bool = True) -> TraceRead:
    trace = await traces.create_trace(state, tenant_id, TraceCreate(
        repository=REPOSITORY, base_commit="a1b2c3d4e5f6", task="mean() returns wrong values; fix it."))
    tarball = workspace_tarball()
    sha = hashlib.sha256(tarball).hexdigest()

    async def body():
        yield tarball

    await artifacts.put_artifact(state, tenant_id, trace.id, sha, "workspace", body(), max_bytes=len(tarball))
    events = story()
    chunks = [events[i:i + 3] for i in range(0, len(events), 3)]
    for n in (3, 1, 2, 1):  # out of order, and chunk 1 retried
        await capture.add_chunk(state, tenant_id, trace.id, n, Chunk(events=chunks[n - 1]))
    return await finalize.finalize(state, tenant_id, trace.id, Finalize(expected_events=len(events),
                                                                        workspace_sha256=sha), queue_qa=queue_qa)

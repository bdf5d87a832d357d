"""QA and judging end to end: finalize, the worker re-runs the tests in the sandbox, the judge scores.

These run the sandbox for real (bubblewrap), over the example's tiny repository
and pytest from Debian's python3-pytest.
"""

from __future__ import annotations

import io
import tarfile

import pytest
from traces_helpers import BUGGY, event, new_trace, send, story_json, upload, workspace_tarball

from flywheel.server.sandbox.bubblewrap import bwrap_path

pytestmark = pytest.mark.skipif(bwrap_path() is None, reason="bubblewrap is not installed")


async def finalized(client, tenant, workspace: bytes, events: list[dict] | None = None) -> str:
    tid = await new_trace(client, tenant)
    assert (await upload(client, tenant, tid, workspace)).status_code == 201
    events = events or story_json()
    await send(client, tenant, tid, 1, events)
    r = await client.post(f"/v1/traces/{tid}/finalize", json={}, headers=tenant.headers)
    assert r.status_code == 200, r.text
    return tid


async def test_the_fixed_repository_passes_qa_and_is_scored(client, tenant, worker):
    tid = await finalized(client, tenant, workspace_tarball())
    await worker()
    trace = (await client.get(f"/v1/traces/{tid}", headers=tenant.headers)).json()
    assert trace["status"] == "judged", trace
    qa = trace["qa"]
    assert (qa["status"], qa["passed"], qa["failed"], qa["errors"]) == ("passed", 2, 0, 0), qa
    assert qa["backend"] == "bubblewrap" and qa["agrees_with_trace"] is True
    assert qa["trace_last_run"] == {"passed": 2, "failed": 0, "errors": 0}
    log = await client.get(f"/v1/traces/{tid}/artifacts/{qa['log_sha256']}", headers=tenant.headers)
    assert "2 passed" in log.text
    junit = await client.get(f"/v1/traces/{tid}/artifacts/{qa['junit_sha256']}", headers=tenant.headers)
    assert b"<testsuite" in junit.content
    [score] = trace["scores"]
    assert score["judge"] == "deterministic-1" and score["rubric_version"] == "traces-rubric-1"
    dims = {d["name"]: d["score"] for d in score["dimensions"]}
    assert list(dims) == ["correctness", "test_evidence", "root_cause", "minimality", "process_efficiency",
                          "rationale_quality"]
    assert dims["correctness"] == 5 and dims["test_evidence"] == 5 and dims["root_cause"] == 5
    assert 4 <= score["overall"] <= 5


async def test_the_buggy_repository_fails_qa_and_disagrees_with_the_trace(client, tenant, worker):
    tid = await finalized(client, tenant, workspace_tarball(BUGGY))
    await worker()
    trace = (await client.get(f"/v1/traces/{tid}", headers=tenant.headers)).json()
    qa = trace["qa"]
    assert (qa["status"], qa["passed"], qa["failed"]) == ("failed", 0, 2), qa
    assert qa["agrees_with_trace"] is False, "the trace claimed green; QA saw red"
    dims = {d["name"]: d["score"] for d in trace["scores"][0]["dimensions"]}
    assert dims["correctness"] == 1


async def test_a_hostile_workspace_is_refused_not_run(client, tenant, worker):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        link = tarfile.TarInfo("escape")
        link.type, link.linkname = tarfile.SYMTYPE, "../../../etc"
        tar.addfile(link)
    tid = await finalized(client, tenant, buf.getvalue())
    await worker()
    qa = (await client.get(f"/v1/traces/{tid}", headers=tenant.headers)).json()["qa"]
    assert qa["status"] == "error" and "workspace refused" in qa["note"]


async def test_a_hanging_suite_times_out(client, tenant, worker, monkeypatch):
    monkeypatch.setenv("FLYWHEEL_TRACES_QA_TIMEOUT_S", "3")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        data = b"import time\n\ndef test_hangs():\n    time.sleep(600)\n"
        info = tarfile.TarInfo("test_hang.py")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    tid = await finalized(client, tenant, buf.getvalue(), [event(1, "test_run", passed=1)])
    await worker()
    qa = (await client.get(f"/v1/traces/{tid}", headers=tenant.headers)).json()["qa"]
    assert qa["status"] == "timed_out" and qa["duration_s"] < 10

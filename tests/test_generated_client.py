"""A client generated from the OpenAPI document works against the real server.

`openapi-python-client` (a standard generator, pinned in the test extras)
turns the live server's `/schema/openapi.json` into a Python package; the
test imports it and sends events, trains a model, and scores rows with it,
as a customer who never read our code would.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

FAMILY = "example.note_reopen"
ROW = {"length": 1200, "views_7d": 9.5, "has_title": True, "age_days": 3.0, "hour": 14, "edits": 4.0}
PACKAGE = "flywheel_generated_client"


@pytest.fixture(scope="module")
def generated(live_server, tmp_path_factory):
    """The generated package, imported (removed from sys.modules afterwards)."""
    out = tmp_path_factory.mktemp("client")
    document = out / "openapi.json"
    document.write_bytes(httpx.get(f"{live_server.url}/schema/openapi.json").content)
    config = out / "config.yaml"
    config.write_text(f"package_name_override: {PACKAGE}\npost_hooks: []\n")  # no formatter run: not needed
    done = subprocess.run(
        [sys.executable, "-m", "openapi_python_client", "generate", "--path", str(document), "--meta", "none",
         "--output-path", str(out / PACKAGE), "--config", str(config)],
        capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    # The generator skips the media types it has no encoder for (NDJSON, msgpack): nothing else.
    skipped = [line for line in done.stdout.splitlines() if line.startswith(("Unable", "Failure"))]
    assert skipped == [], done.stdout
    sys.path.insert(0, str(out))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(out))
        for name in [n for n in sys.modules if n == PACKAGE or n.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def _module(generated, name: str):
    return importlib.import_module(f"{generated.__name__}.{name}")


async def test_send_events_with_the_generated_client(generated, live_server, tenant):
    models = _module(generated, "models")
    ingest = _module(generated, "api.events.ingest_events")
    client = generated.AuthenticatedClient(base_url=live_server.url, token=tenant.key)
    now = datetime.now(UTC)
    generic = models.GenericEventType.CORE_GENERIC  # the tag: each event type is its own class
    ok = models.GenericEvent(type_=generic, event_id=uuid.uuid4(), ts=now, subject_id="user-1",
                             attributes=models.GenericEventAttributes.from_dict({"page": "/pricing"}))
    old = models.GenericEvent(type_=generic, event_id=uuid.uuid4(), ts=now - timedelta(days=4000))
    async with client:
        result = await ingest.asyncio(client=client, body=[ok, old])
        assert isinstance(result, models.IngestResult), result
        assert (result.accepted, result.duplicate, result.rejected) == (1, 0, 1)
        (rejected,) = result.errors
        assert (rejected.index, rejected.code, rejected.field) == (1, "out_of_range", "$[1].ts")
        again = await ingest.asyncio(client=client, body=[ok])
        assert (again.accepted, again.duplicate) == (0, 1)

        listed = await _module(generated, "api.events.list_events").asyncio(client=client, subject_id="user-1")
        assert [str(e.event_id) for e in listed.items] == [str(ok.event_id)]

    anonymous = generated.Client(base_url=live_server.url)
    async with anonymous:
        refused = await ingest.asyncio_detailed(client=anonymous, body=[ok])
    assert refused.status_code == 401 and isinstance(refused.parsed, models.ErrorBody)
    assert refused.parsed.code == "unauthorized"


async def test_train_and_score_with_the_generated_client(generated, live_server, make_tenant, worker):
    models = _module(generated, "models")
    api = "api.models."
    t = await make_tenant()
    client = generated.AuthenticatedClient(base_url=live_server.url, token=t.key)
    async with client:
        request = models.TrainRequest.from_dict({"auto_activate": True, "options": {"rows": 600}})
        job = await _module(generated, api + "train_model").asyncio(FAMILY, client=client, body=request)
        assert isinstance(job, models.JobRead), job
        await worker()
        done = await _module(generated, "api.jobs.get_job").asyncio(job.id, client=client)
        assert done.state == models.JobState.SUCCEEDED, done

        one = await _module(generated, api + "score").asyncio(
            FAMILY, client=client, body=models.NoteFeatures.from_dict(ROW))
        assert isinstance(one, models.ScoreResult), one
        assert one.family == FAMILY and one.version == 1 and 0 < one.score < 1

        other = {**ROW, "views_7d": 0.0, "has_title": False}
        batch = models.NoteFeaturesBatch(rows=[models.NoteFeatures.from_dict(r) for r in (ROW, other)])
        many = await _module(generated, api + "score_batch").asyncio(FAMILY, client=client, body=batch)
        assert isinstance(many, models.BatchScoreResult), many
        assert len(many.scores) == 2 and many.scores[0] == pytest.approx(one.score, abs=1e-12)

        # Errors come back as the documented ErrorBody.
        missing = await _module(generated, api + "score").asyncio_detailed(
            "example.no_such_family", client=client, body=models.NoteFeatures.from_dict(ROW))
        assert missing.status_code == 404 and isinstance(missing.parsed, models.ErrorBody)
        assert missing.parsed.code == "not_found"

        activated = await _module(generated, api + "activate_model").asyncio(FAMILY, 1, client=client)
        assert isinstance(activated, models.ActivateResult) and activated.version == 1


def test_the_package_is_really_generated(generated):
    assert Path(generated.__file__).parent.name == PACKAGE
    assert hasattr(_module(generated, "api.models.score"), "sync_detailed")

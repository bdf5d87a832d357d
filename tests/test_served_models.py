"""`GET /v1/models` speaks OpenAI's list shape too: the `list_served_models` hook fills `data`."""

from __future__ import annotations

import msgspec
import pytest

from flywheel.contracts.models import ServedModel
from flywheel.server.app import create_app
from flywheel.server.testing.client import app_client
from tests.test_ingest_hooks import plugin

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_served_models_are_listed_per_tenant_beside_families(flywheel_settings, tmp_path_factory, make_tenant):
    seen = []

    async def list_served_models(state, tenant_id):
        seen.append(tenant_id)
        return [ServedModel(id=f"route-for-{str(tenant_id)[:8]}")]

    def broken_list_served_models(tenant_id):
        raise RuntimeError("a failing plugin is skipped, the list still answers")

    settings = msgspec.structs.replace(flywheel_settings, data_dir=str(tmp_path_factory.mktemp("served-data")))
    app = create_app(settings, [plugin("llm", list_served_models=list_served_models),
                                plugin("broken", list_served_models=broken_list_served_models)])
    a, b = await make_tenant(), await make_tenant()
    async with app_client(app) as client:
        for t in (a, b):
            body = (await client.get("/v1/models", headers=t.headers)).json()
            assert body["object"] == "list"
            assert body["data"] == [{"id": f"route-for-{str(t.id)[:8]}", "object": "model", "created": 0,
                                     "owned_by": "flywheel"}]
            assert isinstance(body["items"], list)  # Flywheel's own families stay where they were
    assert seen == [a.id, b.id]

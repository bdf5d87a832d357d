"""`flywheel up --demo` gives the rlaas views something to show, once."""

from __future__ import annotations

import pytest

from flywheel.plugins.rlaas.demo import INTERACTIONS, seed_demo
from flywheel.server.testing import eventually

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_demo_policies_and_interactions_are_loaded_once(client, state, tenant, database):
    for _ in range(2):  # the second start must add nothing
        await seed_demo(state, tenant.id)

        async def loaded():
            n = await database.fetchval("SELECT count(*) FROM rlaas_interactions WHERE tenant_id = $1", tenant.id)
            return n if n >= INTERACTIONS else None

        assert await eventually(loaded, timeout=20, what="demo interactions") == INTERACTIONS
    policies = (await client.get("/v1/rlaas/policies?route=support-draft", headers=tenant.headers)).json()["items"]
    assert sorted((p["name"], p["status"]) for p in policies) == [
        ("gpt-4-1-mini", "shadow"), ("gpt-4o", "canary"), ("gpt-4o-mini", "active")]
    page = (await client.get("/v1/rlaas/interactions?has_feedback=true&limit=500", headers=tenant.headers)).json()
    assert 0 < len(page["items"]) < INTERACTIONS
    assert await database.fetchval("SELECT count(*) FROM rlaas_task_results WHERE tenant_id = $1", tenant.id) > 0
    events = await database.fetchval("SELECT count(*) FROM events WHERE tenant_id = $1", tenant.id)
    feedback = await database.fetchval("SELECT count(*) FROM rlaas_feedback WHERE tenant_id = $1", tenant.id)
    tasks = await database.fetchval("SELECT count(*) FROM rlaas_task_results WHERE tenant_id = $1", tenant.id)
    assert events == INTERACTIONS + feedback + tasks  # every event stored once, though sent twice
    # Rewards are computed at once: every interaction with feedback or a task result has one.
    signalled = await database.fetchval(
        """SELECT count(DISTINCT interaction_id) FROM (SELECT interaction_id FROM rlaas_feedback WHERE tenant_id = $1
           AND kind <> 'comparison' UNION SELECT interaction_id FROM rlaas_task_results WHERE tenant_id = $1) s""",
        tenant.id)
    assert signalled > 0
    assert await database.fetchval("SELECT count(*) FROM rlaas_rewards WHERE tenant_id = $1", tenant.id) == signalled


async def test_seeding_again_hours_later_stores_nothing_twice(client, state, make_tenant, database, monkeypatch):
    """The demo's timestamps count back from the hour it runs in; a restart three hours later must
    send the first seeding's events as they were, or those whose day moved would be stored again."""
    from datetime import datetime, timedelta

    from flywheel.plugins.rlaas import demo

    t = await make_tenant()
    await seed_demo(state, t.id)

    async def projected():
        n = await database.fetchval("SELECT count(*) FROM rlaas_interactions WHERE tenant_id = $1", t.id)
        return n if n >= INTERACTIONS else None

    await eventually(projected, timeout=20, what="demo interactions")
    before = await database.fetchval("SELECT count(*) FROM events WHERE tenant_id = $1", t.id)

    class Later(datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime.now(tz) + timedelta(hours=3, minutes=7)

    monkeypatch.setattr(demo, "datetime", Later)
    await seed_demo(state, t.id)
    # ingest_events answers once the events are committed: a duplicate would be counted by now.
    assert await database.fetchval("SELECT count(*) FROM events WHERE tenant_id = $1", t.id) == before
    assert await database.fetchval("SELECT count(*) FROM rlaas_interactions WHERE tenant_id = $1", t.id) == INTERACTIONS

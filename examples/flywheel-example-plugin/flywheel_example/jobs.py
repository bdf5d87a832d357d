"""Jobs. Idempotent: running one twice leaves the same state as running it once."""

from __future__ import annotations

from flywheel.server.plugin_api import JobContext, tenant_ids
from flywheel_example.contracts import CountNotes


async def count_notes(ctx: JobContext, payload: CountNotes) -> dict:
    """Count the tenant's notes (or every tenant's, when run by cron)."""
    tenants = [ctx.tenant_id] if ctx.tenant_id else await tenant_ids(ctx.state)
    counted = 0
    for i, tenant_id in enumerate(tenants, 1):
        await ctx.db.execute(
            """INSERT INTO example_stats (tenant_id, notes, counted_at)
               SELECT $1, count(*), now() FROM example_notes WHERE tenant_id = $1 AND starts_with(title, $2)
               ON CONFLICT (tenant_id) DO UPDATE SET notes = excluded.notes, counted_at = excluded.counted_at""",
            tenant_id, payload.note_prefix)
        counted += 1
        await ctx.progress(i, len(tenants), "counting")
    notes = await ctx.db.fetchval(
        "SELECT coalesce(sum(notes), 0) FROM example_stats WHERE tenant_id = ANY($1::uuid[])", tenants)
    return {"tenants": counted, "notes": int(notes)}

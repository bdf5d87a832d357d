"""Event maintenance jobs: Parquet compaction, partitions ahead, retention."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import msgspec

from flywheel.server.ingest.archive import compact_day

PARTITIONS_AHEAD_DAYS = 7


class CompactPayload(msgspec.Struct, forbid_unknown_fields=True):
    day: date | None = None  # default: yesterday (UTC)


async def compact_events(ctx, payload: CompactPayload) -> dict:
    """Compact one day of events into Parquet: the job's tenant, or every tenant (cron)."""
    day = payload.day or (datetime.now(UTC).date() - timedelta(days=1))
    if ctx.tenant_id is not None:
        tenants = [ctx.tenant_id]
    else:
        tenants = [r["tenant_id"] for r in await ctx.db.fetch(
            "SELECT DISTINCT tenant_id FROM events WHERE day = $1 ORDER BY tenant_id", day)]
    rows = 0
    for i, tenant_id in enumerate(tenants):
        result = await compact_day(ctx.state, tenant_id, day)
        rows += result["rows"]
        await ctx.progress(i + 1, len(tenants), f"compacted {rows} events")
    return {"day": day.isoformat(), "tenants": len(tenants), "rows": rows}


async def maintain_events(ctx) -> dict:
    """Create partitions a week ahead, drop those past retention, prune idempotency keys."""
    today = datetime.now(UTC).date()
    created = await ctx.db.fetchval("SELECT flywheel_ensure_event_partitions($1, $2)",
                                    today, today + timedelta(days=PARTITIONS_AHEAD_DAYS))
    dropped = await drop_expired_partitions(ctx.db, ctx.state.settings.events_retention_days, today)
    pruned = await ctx.db.execute("DELETE FROM idempotency_keys WHERE created_at < now() - interval '24 hours'")
    return {"created": created, "dropped": dropped, "idempotency_keys_pruned": int(pruned.split()[-1])}


async def drop_expired_partitions(db, retention_days: int, today: date) -> list[str]:
    if retention_days <= 0:
        return []
    cutoff = today - timedelta(days=retention_days)
    names = [r["name"] for r in await db.fetch(
        """SELECT c.relname AS name FROM pg_inherits i
           JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
           WHERE p.relname = 'events' AND c.relname ~ '^events_[0-9]{8}$' ORDER BY 1""")]
    dropped = []
    for name in names:
        if datetime.strptime(name[-8:], "%Y%m%d").date() < cutoff:
            await db.execute(f'DROP TABLE IF EXISTS "{name}"')  # name checked by the regex above
            dropped.append(name)
    return dropped

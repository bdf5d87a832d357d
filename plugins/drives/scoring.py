"""The daily scoring job: every drive's risk for a day, with reasons for the riskiest.

Scores go through the core's batch helper (`score_table`: the active
version's ONNX session, in chunks) as margins (log-odds): the risk is their
sigmoid in float64, and ranks and bands come from the margins, which never
tie the way probabilities of rare events do. Bands are by fleet percentile
(per tenant, `drives_settings`; default: the riskiest 1% "high", the next 4%
"medium"), so a real fleet, where the model's probabilities are all small,
still has a top of the list. Reasons (LightGBM contributions, ~2 ms a drive)
are computed here for the drives people look at first: the high and medium
bands and the top 100, at most MAX_EXPLAINED; the drive detail API explains
any other drive on demand.
"""

from __future__ import annotations

from datetime import date
from uuid import UUID

import msgspec
import numpy as np
from scipy.special import expit as sigmoid  # float64, no overflow at large |margin|

from flywheel.contracts.jobs import JobSpec
from flywheel.plugins.drives.model import FAMILY_NAME, day_features
from flywheel.server.plugin_api import active_version, explain_table, score_table, tenant_ids

DEFAULT_HIGH_SHARE, DEFAULT_MEDIUM_SHARE = 0.01, 0.04
REASONS = 3
MIN_EXPLAINED, MAX_EXPLAINED = 100, 500


async def band_shares(db, tenant_id: UUID) -> tuple[float, float]:
    row = await db.fetchrow("SELECT high_share, medium_share FROM drives_settings WHERE tenant_id = $1", tenant_id)
    return (row["high_share"], row["medium_share"]) if row else (DEFAULT_HIGH_SHARE, DEFAULT_MEDIUM_SHARE)


def bands(margin: np.ndarray, high_share: float, medium_share: float) -> np.ndarray:
    """'high' for the top `high_share` of the day's drives by margin, 'medium' for the next `medium_share`."""
    n = len(margin)
    order = np.argsort(-margin, kind="stable")
    n_high = int(np.ceil(n * high_share))
    n_medium = int(np.ceil(n * (high_share + medium_share))) - n_high
    out = np.full(n, "low", dtype=object)
    out[order[:n_high]] = "high"
    out[order[n_high:n_high + n_medium]] = "medium"
    return out


async def score_day(state, tenant_id: UUID, day: date | None = None, progress=None) -> dict:
    db = state.db
    day = day or await db.fetchval("SELECT max(day) FROM drives_features WHERE tenant_id = $1", tenant_id)
    if day is None:
        return {"day": None, "drives": 0}
    table = await day_features(db, tenant_id, day)
    if table.num_rows == 0:
        return {"day": day.isoformat(), "drives": 0}
    version, margin = await score_table(state, tenant_id, FAMILY_NAME, table, progress=progress, margin=True)
    risk = sigmoid(margin)
    band = bands(margin, *await band_shares(db, tenant_id))
    serials = table.column("serial_number").to_pylist()

    k = min(MAX_EXPLAINED, max(MIN_EXPLAINED, int((band != "low").sum())))
    explain = np.sort(np.argsort(-margin, kind="stable")[:k])
    explained = await explain_table(state, tenant_id, FAMILY_NAME, table.take(explain), version=version,
                                    top=REASONS)
    reasons = {int(i): [msgspec.to_builtins(c) for c in e.top if c.contribution > 0]
               for i, e in zip(explain, explained)}

    await store_risks(db, tenant_id, day, serials, risk, margin, band, version, reasons)
    return {"day": day.isoformat(), "drives": len(serials), "model_version": version,
            "high": int((band == "high").sum()), "medium": int((band == "medium").sum()),
            "explained": len(reasons)}


async def explain_drive(state, tenant_id: UUID, serial: str, day: date, version: int) -> list[dict]:
    """Reasons for one drive's risk on `day` with model `version`, computed now (the job explains only the riskiest)."""
    table = await day_features(state.db, tenant_id, day, serial=serial)
    if table.num_rows == 0:
        return []
    (e,) = await explain_table(state, tenant_id, FAMILY_NAME, table, version=version, top=REASONS)
    return [msgspec.to_builtins(c) for c in e.top if c.contribution > 0]


async def store_risks(db, tenant_id: UUID, day: date, serials: list[str], risk, margin, band, version: int,
                      reasons: dict[int, list]) -> None:
    """One day's risks into drives_risk (replacing a previous run's) and the inventory, in one transaction."""
    encode = msgspec.json.encode
    records = [(tenant_id, day, serials[i], float(risk[i]), float(margin[i]), band[i], version,
                encode(reasons[i]).decode() if i in reasons else None) for i in range(len(serials))]
    async with db.acquire() as conn, conn.transaction():
        await conn.execute("""CREATE TEMP TABLE IF NOT EXISTS drives_risk_staging (
                                tenant_id uuid, day date, serial_number text, risk float8, margin float8,
                                band text, model_version int, reasons text) ON COMMIT DELETE ROWS""")
        await conn.copy_records_to_table("drives_risk_staging", records=records)
        await conn.execute(
            """INSERT INTO drives_risk (tenant_id, day, serial_number, risk, margin, band, model_version, reasons)
               SELECT tenant_id, day, serial_number, risk, margin, band, model_version, reasons::jsonb
               FROM drives_risk_staging
               ON CONFLICT (tenant_id, day, serial_number) DO UPDATE
               SET risk = EXCLUDED.risk, margin = EXCLUDED.margin, band = EXCLUDED.band,
                   model_version = EXCLUDED.model_version, reasons = EXCLUDED.reasons, scored_at = now()""")
        await conn.execute(
            """UPDATE drives_inventory i SET risk = s.risk, margin = s.margin, band = s.band, risk_day = s.day,
                      model_version = s.model_version, reasons = s.reasons::jsonb
               FROM drives_risk_staging s
               WHERE i.tenant_id = s.tenant_id AND i.serial_number = s.serial_number
                 AND (i.risk_day IS NULL OR i.risk_day <= s.day)""")


class ScoreFleet(msgspec.Struct, forbid_unknown_fields=True):
    """Payload of `drives.score_fleet`: `{"day": "2013-04-30"}` scores that day (an ISO date); `{}` scores the
    latest day with features. Scoring a day again replaces its scores."""

    day: date | None = None


async def score_fleet_job(ctx, payload: ScoreFleet) -> dict:
    """Score the tenant's fleet (cron: every tenant with an active drives.h30 model)."""
    tenants = [ctx.tenant_id] if ctx.tenant_id is not None else [
        t for t in await tenant_ids(ctx.state) if await active_version(ctx.state, t, FAMILY_NAME) is not None]
    results = []
    for tenant_id in tenants:
        async def progress(done: int, total: int) -> None:
            await ctx.progress(done, total, f"scored {done:,} of {total:,} drives", force=done == total)

        results.append(await score_day(ctx.state, tenant_id, payload.day, progress=progress))
    if ctx.tenant_id is not None:
        return results[0]
    return {"tenants": len(results), "drives": sum(r["drives"] for r in results)}


JOBS = [JobSpec(name="drives.score_fleet", func=score_fleet_job, payload=ScoreFleet, timeout_s=3600,
                description="Score every drive reporting on a day (payload `day`, ISO date; default the latest day "
                            "with features), with reasons for the riskiest")]

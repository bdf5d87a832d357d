"""The drives plugin's alert conditions, evaluated per tenant by the core's hourly job.

`drives.top_risk_band`: a drive in the top risk band on the latest scored
day. The top band is `high`: the riskiest `high_share` of that day's scored
drives by margin (the tenant's `drives_settings`, default 1%; the scoring
job stores each drive's band in `drives_risk`). One alert per drive, opened
when it enters the band, repeated while it stays, resolved by itself when a
later day's scores put it below the band. Drives that have already failed
are left out: they are not at risk, they are gone.

`drives.failure_rate`: the fleet's failure rate over the last 7 days (to the
latest day with records) against its trailing mean over the 84 days before
them (12 weeks). Failures are rare events, so "above the mean" is judged as
a Poisson count: the alert opens when the week's failures would happen with
probability under 1% at the trailing rate (under 0.01%: critical), and at
least 3 drives failed. Drive-days come from each drive's first and last day
in the inventory (100,000 rows, not 9 million daily records): a drive is
counted on every day between them, as Backblaze drives report daily.
"""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID

from scipy.special import gammainc

from flywheel.server.plugin_api import AlertCondition, Finding

TOP_BAND = "high"
RECENT_DAYS, TRAILING_DAYS = 7, 84
MIN_TRAILING_DAYS = 28  # less history than four weeks: no judgement
MIN_FAILURES = 3
WARNING_P, CRITICAL_P = 0.01, 0.0001

_TOP_BAND = """
    WITH latest AS (SELECT max(day) AS day FROM drives_risk WHERE tenant_id = $1),
         previous AS (SELECT max(r.day) AS day FROM drives_risk r, latest WHERE r.tenant_id = $1 AND r.day < latest.day)
    SELECT r.serial_number, r.day, r.risk, r.margin, r.model_version, i.model, p.band AS previous_band,
           previous.day AS previous_day
    FROM drives_risk r
    JOIN latest ON r.day = latest.day
    CROSS JOIN previous
    LEFT JOIN drives_inventory i ON i.tenant_id = r.tenant_id AND i.serial_number = r.serial_number
    LEFT JOIN drives_risk p ON p.tenant_id = r.tenant_id AND p.serial_number = r.serial_number AND p.day = previous.day
    WHERE r.tenant_id = $1 AND r.band = $2 AND (i.failure_day IS NULL OR i.failure_day > r.day)
    ORDER BY r.margin DESC, r.serial_number"""


async def top_band(state: Any, tenant_id: UUID) -> list[Finding]:
    rows = await state.db.fetch(_TOP_BAND, tenant_id, TOP_BAND)
    return [Finding(key=r["serial_number"],
                    title=f"Drive {r['serial_number']} ({r['model'] or 'unknown model'}) is in the top risk band",
                    details={"day": r["day"].isoformat(), "risk": r["risk"], "margin": r["margin"],
                             "model": r["model"], "model_version": r["model_version"],
                             "previous_band": r["previous_band"],
                             "previous_day": r["previous_day"].isoformat() if r["previous_day"] else None})
            for r in rows]


# Drive-days and failures in the recent window (the last RECENT_DAYS days to the latest day with
# records) and the trailing one before it, from each drive's span in the inventory.
_RATE = """
    WITH latest AS (SELECT max(last_day) AS day FROM drives_inventory WHERE tenant_id = $1),
         w AS (SELECT day - ($2 - 1) AS recent_from, day AS recent_to,
                      day - ($2 + $3 - 1) AS trailing_from, day - $2 AS trailing_to FROM latest)
    SELECT w.recent_from, w.recent_to, w.trailing_from, w.trailing_to,
           coalesce(sum(greatest(0, least(i.last_day, w.recent_to) - greatest(i.first_day, w.recent_from) + 1)), 0)
               AS recent_drive_days,
           count(*) FILTER (WHERE i.failure_day BETWEEN w.recent_from AND w.recent_to) AS recent_failures,
           coalesce(sum(greatest(0, least(i.last_day, w.trailing_to) - greatest(i.first_day, w.trailing_from) + 1)), 0)
               AS trailing_drive_days,
           count(*) FILTER (WHERE i.failure_day BETWEEN w.trailing_from AND w.trailing_to) AS trailing_failures,
           greatest(0, w.trailing_to - greatest(min(i.first_day), w.trailing_from) + 1) AS trailing_days
    FROM drives_inventory i CROSS JOIN w
    WHERE i.tenant_id = $1
    GROUP BY w.recent_from, w.recent_to, w.trailing_from, w.trailing_to"""


def poisson_at_least(k: int, mean: float) -> float:
    """P(X >= k) for X ~ Poisson(mean): the regularized lower incomplete gamma P(k, mean)."""
    return 1.0 if k <= 0 else float(gammainc(k, mean))


def _afr(failures: int, drive_days: int) -> float:
    """Annualized failure rate in percent, as Backblaze reports it."""
    return failures / drive_days * 365 * 100 if drive_days else 0.0


def _day(value: date) -> str:
    return value.isoformat()


async def failure_rate(state: Any, tenant_id: UUID) -> list[Finding]:
    r = await state.db.fetchrow(_RATE, tenant_id, RECENT_DAYS, TRAILING_DAYS)
    if r is None or r["trailing_days"] < MIN_TRAILING_DAYS or not r["trailing_drive_days"]:
        return []
    k, recent_dd = int(r["recent_failures"]), int(r["recent_drive_days"])
    # Half a failure added to the trailing count: a fleet with none so far is not at a rate of zero.
    trailing_rate = (int(r["trailing_failures"]) + 0.5) / int(r["trailing_drive_days"])
    expected = trailing_rate * recent_dd
    p = poisson_at_least(k, expected)
    if k < MIN_FAILURES or k <= expected or p >= WARNING_P:
        return []
    recent_afr = _afr(k, recent_dd)
    trailing_afr = _afr(int(r["trailing_failures"]), int(r["trailing_drive_days"]))
    details = {"window": f"{_day(r['recent_from'])}..{_day(r['recent_to'])}",
               "trailing_window": f"{_day(r['trailing_from'])}..{_day(r['trailing_to'])}",
               "failures": k, "expected_failures": round(expected, 3), "p_value": p,
               "drive_days": recent_dd, "afr_percent": round(recent_afr, 3),
               "trailing_failures": int(r["trailing_failures"]), "trailing_drive_days": int(r["trailing_drive_days"]),
               "trailing_afr_percent": round(trailing_afr, 3)}
    return [Finding(key="fleet", severity="critical" if p < CRITICAL_P else "warning", details=details,
                    title=f"Fleet failures: {k} in the {RECENT_DAYS} days to {_day(r['recent_to'])} "
                          f"({recent_afr:.2f}% AFR), {expected:.1f} expected at the trailing {TRAILING_DAYS}-day "
                          f"rate ({trailing_afr:.2f}%)")]


CONDITIONS = [
    AlertCondition(name="drives.top_risk_band", severity="warning", evaluate=top_band,
                   description="A drive is in the top risk band (the riskiest share of the latest scored day; "
                               "`/v1/drives/settings` high_share, default 1%); resolves when it leaves the band"),
    AlertCondition(name="drives.failure_rate", severity="warning", evaluate=failure_rate,
                   description=f"The fleet's failures in the last {RECENT_DAYS} days are above its trailing "
                               f"{TRAILING_DAYS}-day rate beyond chance (Poisson p < {WARNING_P:g}; critical "
                               f"below {CRITICAL_P:g}), with at least {MIN_FAILURES} failures"),
]

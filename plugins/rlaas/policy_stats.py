"""How each policy of a route is doing, day by day: what the console compares a canary with.

One aggregate query over `rlaas_interactions` (with feedback and rewards joined)
per route and window; the console draws its rows as one line per policy. The
figures per policy and day:

- `feedback_rate`: the share of its interactions with at least one feedback event;
- `mean_reward`: the mean of their rewards (interactions without one left out);
- `p50_ms` / `p95_ms`: latency percentiles;
- `error_rate`: the share that failed (upstream status 0 or >= 400, or an error).

Shadow calls are their own series (`name vN (shadow)`): they answer no user, so
they have no feedback, but their latency and errors are worth seeing before a
promotion.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import msgspec

DAYS_MAX = 90

# {day}: the day of each call, or NULL for one row per series over the whole window.
_STATS = """
SELECT {day} AS day, i.policy, i.policy_version, i.role,
       count(*) AS calls,
       count(*) FILTER (WHERE EXISTS (SELECT 1 FROM rlaas_feedback f
                                      WHERE f.tenant_id = i.tenant_id AND f.interaction_id = i.interaction_id))
           AS with_feedback,
       avg(r.reward) AS mean_reward,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY i.latency_ms) AS p50_ms,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY i.latency_ms) AS p95_ms,
       count(*) FILTER (WHERE i.status = 0 OR i.status >= 400 OR i.error IS NOT NULL) AS errors
  FROM rlaas_interactions i
  LEFT JOIN rlaas_rewards r ON r.tenant_id = i.tenant_id AND r.interaction_id = i.interaction_id
 WHERE i.tenant_id = $1 AND i.route = $2 AND i.ts >= $3 AND i.ts < $4
 GROUP BY 1, 2, 3, 4
 ORDER BY 1, 2, 3, 4"""
_DAILY = _STATS.format(day="(date_trunc('day', i.ts AT TIME ZONE 'UTC'))::date")
_WHOLE = _STATS.format(day="NULL::date")


class PolicyDay(msgspec.Struct, kw_only=True):
    day: date
    series: str  # "name vN", or "name vN (shadow)"
    calls: int
    feedback_rate: float
    mean_reward: float | None
    p50_ms: float
    p95_ms: float
    error_rate: float


class PolicySummary(msgspec.Struct, kw_only=True):
    """One series over the whole window: the side-by-side comparison's row."""

    series: str
    calls: int
    traffic_share: float | None  # of the route's primary calls; None for shadow calls
    feedback_rate: float
    mean_reward: float | None
    p50_ms: float
    p95_ms: float
    error_rate: float


def series_name(policy: str, version: int, role: str) -> str:
    return f"{policy} v{version}" + (" (shadow)" if role == "shadow" else "")


def window(days: int, *, now: datetime | None = None) -> tuple[datetime, datetime]:
    """The last `days` whole UTC days, today included."""
    end = (now or datetime.now(UTC)).astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    end += timedelta(days=1)
    return end - timedelta(days=days), end


async def daily(db: Any, tenant_id: UUID, route: str, since: datetime, until: datetime) -> list[PolicyDay]:
    rows = await db.fetch(_DAILY, tenant_id, route, since, until)
    return [PolicyDay(day=r["day"], series=series_name(r["policy"], r["policy_version"], r["role"]),
                      calls=r["calls"], feedback_rate=r["with_feedback"] / r["calls"], mean_reward=r["mean_reward"],
                      p50_ms=r["p50_ms"], p95_ms=r["p95_ms"], error_rate=r["errors"] / r["calls"]) for r in rows]


async def summaries(db: Any, tenant_id: UUID, route: str, since: datetime, until: datetime) -> list[PolicySummary]:
    """Each series over the window. Percentiles are recomputed over all calls, not averaged by day."""
    rows = await db.fetch(_WHOLE, tenant_id, route, since, until)
    primary = sum(r["calls"] for r in rows if r["role"] == "primary")
    return [PolicySummary(series=series_name(r["policy"], r["policy_version"], r["role"]), calls=r["calls"],
                          traffic_share=r["calls"] / primary if r["role"] == "primary" and primary else None,
                          feedback_rate=r["with_feedback"] / r["calls"], mean_reward=r["mean_reward"],
                          p50_ms=r["p50_ms"], p95_ms=r["p95_ms"], error_rate=r["errors"] / r["calls"])
            for r in rows]


def chart_series(days: list[PolicyDay], figure: str) -> dict[str, list[tuple[date, float | None]]]:
    """One figure of `daily`'s rows as line-chart series: {series: [(day, value)]}."""
    out: dict[str, list[tuple[date, float | None]]] = {}
    for d in days:
        out.setdefault(d.series, []).append((d.day, getattr(d, figure)))
    return out

"""Alerts for the thresholds a day's figures crossed (server/alerts deduplicates them while open).

One alert per (rule, key): the key names the family, the version and what
crossed (`drives.h30/v3/feature/s5`, `drives.h30/v3/score`), not the day, so
a feature drifting for a week is one open alert counting repeats, not seven.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from uuid import UUID

from flywheel.server.monitoring.contracts import Breach, DayFigures

if TYPE_CHECKING:
    from flywheel.server.state import AppState

SEVERITY = {"warn": "warning", "alert": "critical"}
_WHAT = {"monitoring.psi": "PSI", "monitoring.missing_rate": "missing share rise",
         "monitoring.calibration": "calibration error", "monitoring.volume_drop": "drop in rows scored",
         "monitoring.error_rate": "error rate"}


def title(f: DayFigures, b: Breach) -> str:
    subject = b.what.removeprefix("feature/")
    return (f"{f.family} v{f.version}: {_WHAT.get(b.rule, b.rule)} of {subject} is {b.value:.3g} on {f.day} "
            f"({'alert' if b.level == 'alert' else 'warning'} at {b.threshold:g})")[:300]


async def raise_breaches(state: AppState, tenant_id: UUID, f: DayFigures, rules: frozenset[str] | None = None) -> int:
    """Raise an alert for each breach (only those of `rules` when given); returns how many were kept."""
    from flywheel.server.alerts import raise_alert

    kept = 0
    for b in f.breaches:
        if rules is not None and b.rule not in rules:
            continue
        alert = await raise_alert(state, tenant_id, rule=b.rule, key=b.key, severity=SEVERITY[b.level],
                                  title=title(f, b), details={
                                      "family": f.family, "version": f.version, "day": f.day.isoformat(),
                                      "what": b.what, "value": b.value, "threshold": b.threshold,
                                      "level": b.level, "rows": f.rows})
        kept += alert is not None
    return kept

"""Where one version-day's data comes from.

Drift figures come from one of two places, decided per family and day:

- the scoring path's counts (recorder.py): rows counted into the version's
  bins as `/score`, `/score_batch` and `score_table` scored them, by the UTC
  day they were scored. Every family gets these with no code of its own, and
  reading a day is one row of a few hundred integers;
- the family's own rows (the `monitoring_rows` hook), when its plugin keeps
  what it scored by the day the rows describe, as a batch job scoring a data
  day (or a year of history) does. These are binned here with the same
  edges; they cost a read of the day's rows, and make backfills over days
  scored before monitoring existed possible.

Operational figures are always the scoring path's (when the service ran),
and outcomes for calibration come from the `monitoring_outcomes` hook.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any
from uuid import UUID

import msgspec
import numpy as np
import pyarrow as pa

from flywheel.server.hooks import call_hook
from flywheel.server.monitoring.contracts import MonitoringOutcomes

if TYPE_CHECKING:
    from flywheel.server.monitoring.bins import Layout
    from flywheel.server.state import AppState


class SourceError(ValueError):
    """A family's hook returned something unusable; the message names the plugin."""


@dataclass
class Drift:
    source: str  # "scoring", "family" or "none"
    rows: int
    counts: np.ndarray | None  # flat bin counts (None: no bins, the version has no reference)
    score_mean: float | None


async def drift(state: AppState, tenant_id: UUID, family: str, version: int, day: date,
                layout: Layout | None) -> Drift:
    table = await family_rows(state, tenant_id, family, version, day)
    if table is not None:
        return await _binned(state, tenant_id, family, version, table, layout)
    row = await state.db.fetchrow(
        "SELECT rows, score_sum, counts FROM model_scored_bins WHERE tenant_id = $1 AND family = $2 "
        "AND version = $3 AND day = $4", tenant_id, family, version, day)
    if row is None or layout is None or len(row["counts"]) != layout.size:
        return Drift("none", 0, None, None)
    rows = int(row["rows"])
    return Drift("scoring", rows, np.asarray(row["counts"], dtype=np.int64),
                 row["score_sum"] / rows if rows else None)


async def family_rows(state: AppState, tenant_id: UUID, family: str, version: int, day: date) -> pa.Table | None:
    """The family's own rows for the day, if its plugin keeps them (else None)."""
    owner = state.contributions.model_families[family][0]
    for plugin, value in await call_hook(state.pm, "monitoring_rows", state=state, tenant_id=tenant_id,
                                         family=family, version=version, day=day):
        if plugin != owner:
            continue
        if not isinstance(value, pa.Table) or "margin" not in value.column_names:
            raise SourceError(f"plugin {plugin!r}: monitoring_rows must return a pyarrow.Table with the "
                              f"features and a `margin` column, got {type(value).__name__}")
        return value
    return None


async def _binned(state: AppState, tenant_id: UUID, family: str, version: int, table: pa.Table,
                  layout: Layout | None) -> Drift:
    import asyncio

    from scipy.special import expit

    if table.num_rows == 0:
        return Drift("family", 0, None if layout is None else np.zeros(layout.size, np.int64), None)
    margins = table.column("margin").to_numpy(zero_copy_only=False).astype(np.float64)
    mean = float(expit(margins).mean())
    if layout is None:
        return Drift("family", table.num_rows, None, mean)
    spec = await version_spec_of(state, tenant_id, family, version)
    counts = await asyncio.to_thread(lambda: layout.count(spec.table_matrix(table), margins))
    return Drift("family", table.num_rows, counts, mean)


async def version_spec_of(state: AppState, tenant_id: UUID, family: str, version: int) -> Any:
    """The features `version` is served with (its stored schema, categories and all)."""
    from flywheel.server.models.families import family_of
    from flywheel.server.models.runtime import version_spec

    stored = await state.db.fetchval("SELECT features FROM model_versions WHERE tenant_id = $1 AND family = $2 "
                                     "AND version = $3", tenant_id, family, version)
    return version_spec(family_of(state, family), stored, version)


async def counters(state: AppState, tenant_id: UUID, family: str, version: int, day: date) -> list[Any]:
    return await state.db.fetch(
        """SELECT endpoint, requests, rows, client_errors, server_errors, latency FROM model_scoring_counters
           WHERE tenant_id = $1 AND family = $2 AND version = $3 AND day = $4 ORDER BY endpoint""",
        tenant_id, family, version, day)


async def outcomes(state: AppState, tenant_id: UUID, family: str, version: int,
                   day: date) -> tuple[np.ndarray, np.ndarray] | None:
    """(probabilities, 0/1 labels) of the day's rows, once the family knows them; else None."""
    owner = state.contributions.model_families[family][0]
    for plugin, value in await call_hook(state.pm, "monitoring_outcomes", state=state, tenant_id=tenant_id,
                                         family=family, version=version, day=day):
        if plugin == owner:
            return checked_outcomes(plugin, value)
    return None


def checked_outcomes(plugin: str, value: Any) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(value, dict):
        value = msgspec.convert(value, MonitoringOutcomes)
    if not isinstance(value, MonitoringOutcomes):
        raise SourceError(f"plugin {plugin!r}: monitoring_outcomes must return MonitoringOutcomes, "
                          f"got {type(value).__name__}")
    scores = np.asarray(value.scores, dtype=np.float64)
    labels = np.asarray(value.labels, dtype=np.float64)
    if scores.shape != labels.shape or scores.ndim != 1:
        raise SourceError(f"plugin {plugin!r}: monitoring_outcomes gave {scores.shape} scores and "
                          f"{labels.shape} labels; they must be one-dimensional and of one length")
    if not np.all((scores >= 0) & (scores <= 1)):
        raise SourceError(f"plugin {plugin!r}: monitoring_outcomes scores must be probabilities in [0, 1]")
    if not np.all((labels == 0) | (labels == 1)):
        raise SourceError(f"plugin {plugin!r}: monitoring_outcomes labels must be 0 or 1")
    return scores, labels

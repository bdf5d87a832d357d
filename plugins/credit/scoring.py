"""Scoring applicants: raw columns -> the run's transforms -> PD, points and adverse-action reasons.

Points follow the usual scorecard scaling: `pdo` more points double the odds
of good to bad, and `base_score` sits at `base_odds`:
points = base_score + pdo / ln 2 * (ln(odds_good) - ln(base_odds)).
Reasons are the features pushing this applicant toward default most (the
largest positive contributions to the model's log-odds of `bad`), in the
words their authors gave them.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import NamedTuple
from uuid import UUID

import pyarrow as pa

from flywheel.plugins.credit import catalog, datasets, runs
from flywheel.plugins.credit.contracts import CreditScore, Reason, RunRead, Scaling
from flywheel.plugins.credit.family import FAMILY_NAME
from flywheel.plugins.credit.transforms import describe, materialize
from flywheel.server.plugin_api import InvalidInput, NotFound, explain_table, score_table

_ARROW = {"number": pa.float64(), "boolean": pa.bool_(), "string": pa.string()}
_INPUTS = "credit.scoring_inputs"
CACHED_RUNS = 256


class Inputs(NamedTuple):
    """What scoring a run's applicants needs from the catalog."""
    features: list
    columns: dict[str, str]  # the dataset's raw columns and their types
    needed: list[str]  # the raw columns the features read
    by_name: dict


def points(pd: float, s: Scaling) -> float:
    pd = min(max(pd, 1e-12), 1 - 1e-12)
    return s.base_score + s.pdo / math.log(2) * (math.log((1 - pd) / pd) - math.log(s.base_odds))


async def scoring_run(db, tenant_id: UUID, run_id: UUID | None) -> RunRead:
    run = await runs.latest_passed(db, tenant_id) if run_id is None else await runs.get(db, tenant_id, run_id)
    if run is None:
        raise NotFound("no run has passed its evaluation policy yet: name a run_id", field="$.run_id")
    if run.state != "succeeded" or run.model_version is None:
        raise InvalidInput(f"run {run.id} is {run.state}; only a succeeded run's model scores", field="$.run_id",
                           code="run_not_ready")
    return run


def raw_table(rows: list[dict], columns: dict[str, str], needed: list[str]) -> pa.Table:
    """The rows' raw columns typed as the dataset's (numbers may come as strings of digits: no)."""
    out = {}
    for name in needed:
        kind = columns[name]
        values = [row.get(name) for row in rows]
        for i, v in enumerate(values):
            ok = v is None or (kind == "number" and type(v) in (int, float)) or (kind == "string" and type(v) is str) \
                or (kind == "boolean" and type(v) is bool)
            if not ok:
                raise InvalidInput(f"column {name!r} is a {kind} in the dataset, got {type(v).__name__}",
                                   field=f"$.rows[{i}].{name}" if len(rows) > 1 else f"$.row.{name}", code="wrong_type")
        out[name] = pa.array(values, _ARROW.get(kind, pa.string()))
    return pa.table(out) if out else pa.table({"_": pa.nulls(len(rows))})


async def run_inputs(state, tenant_id: UUID, run: RunRead) -> Inputs:
    """The run's features and raw columns, kept per process: a run's dataset and feature set
    versions are immutable once it used them, and reading them is two queries per request."""
    cache: OrderedDict = state.extras.setdefault(_INPUTS, OrderedDict())
    key = (tenant_id, run.id)
    found = cache.get(key)
    if found is None:
        fs = await catalog.get_set_version(state.db, tenant_id, run.spec.feature_set_version_id)
        ds = await datasets.get_version(state.db, tenant_id, run.spec.dataset_version_id)
        found = cache[key] = Inputs(features=fs.features, columns={c.name: c.type for c in ds.profile.columns},
                                    needed=sorted({c for f in fs.features for c in f.source_columns}),
                                    by_name={f.name: f for f in fs.features})
        while len(cache) > CACHED_RUNS:
            cache.popitem(last=False)
    cache.move_to_end(key)
    return found


async def score_rows(state, tenant_id: UUID, run: RunRead, rows: list[dict], scaling: Scaling,
                     top: int) -> list[CreditScore]:
    inputs = await run_inputs(state, tenant_id, run)
    features = materialize(raw_table(rows, inputs.columns, inputs.needed), inputs.features)
    _, pd = await score_table(state, tenant_id, FAMILY_NAME, features, version=run.model_version)
    explained = await explain_table(state, tenant_id, FAMILY_NAME, features, version=run.model_version,
                                    top=len(inputs.features)) if top else [None] * len(rows)
    by_name = inputs.by_name
    out = []
    for p, why in zip(pd, explained):
        reasons = []
        if why is not None:
            adverse = sorted((c for c in why.top if c.contribution > 0), key=lambda c: -c.contribution)[:top]
            reasons = [Reason(feature=c.feature, description=describe(by_name[c.feature]),
                              contribution=c.contribution,
                              value=c.category if by_name[c.feature].transform == "categorical" else c.value)
                       for c in adverse]
        out.append(CreditScore(probability_of_default=float(p), points=round(points(float(p), scaling), 2),
                               reasons=reasons))
    return out



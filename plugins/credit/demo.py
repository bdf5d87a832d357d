"""Generated credit data (realistic columns, a string categorical, missing values) and the demo.

`flywheel up --demo` uploads a generated dataset, defines features and a
feature set, and runs one spec in this process, so every credit page has
something to show. A second start finds the dataset and does nothing.
"""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import structlog

from flywheel.plugins.credit import catalog, datasets, runs
from flywheel.plugins.credit.contracts import FeatureCreate, RunJob, RunSpec
from flywheel.server.plugin_api import Conflict, run_here

log = structlog.get_logger("flywheel.credit")
DEMO_NAME = "demo-applicants"
REGIONS = ["north", "south", "east", "west", "capital"]


def generate(rows: int, seed: int = 0, extra_columns: int = 0) -> pa.Table:
    """Applicants whose default follows income, debt, delinquencies, utilization and region (with noise)."""
    rng = np.random.default_rng(seed)
    income = rng.lognormal(10.6, 0.5, rows)
    debt = income * rng.uniform(0, 0.8, rows)
    delinquencies = rng.poisson(0.4, rows).astype(float)
    utilization = np.clip(rng.beta(2, 3, rows), 0, 1)
    age = rng.integers(19, 80, rows).astype(float)
    region = np.asarray(REGIONS)[rng.integers(0, len(REGIONS), rows)]
    region_risk = {"north": -0.2, "south": 0.3, "east": 0.0, "west": -0.1, "capital": 0.2}
    margin = (-3.4 + 3.0 * debt / income + 0.9 * delinquencies + 2.5 * utilization - 0.02 * (age - 40)
              + 2 * np.vectorize(region_risk.get)(region) + rng.normal(0, 0.3, rows))
    bad = (rng.uniform(0, 1, rows) < 1 / (1 + np.exp(-margin))).astype(np.int8)
    income_col = pa.array(np.where(rng.uniform(0, 1, rows) < 0.05, np.nan, income), from_pandas=True)
    region_col = pa.array([None if m else r for r, m in zip(region, rng.uniform(0, 1, rows) < 0.02)], pa.string())
    columns = {"income": income_col, "debt": debt, "delinquencies_12m": delinquencies, "utilization": utilization,
               "age": age, "region": region_col, "bad": bad}
    for j in range(extra_columns):  # noise columns, for benchmarks of wide tables
        columns[f"x{j:02d}"] = rng.normal(0, 1, rows)
    return pa.table(columns)


DEMO_FEATURES = [
    FeatureCreate(name="income_log", source_columns=["income"], transform="log1p", monotone=-1,
                  description="Income too low"),
    FeatureCreate(name="debt_to_income", source_columns=["debt", "income"], transform="ratio", monotone=1,
                  description="Debt too high for income"),
    FeatureCreate(name="delinquencies", source_columns=["delinquencies_12m"], transform="clip", monotone=1,
                  params={"lower": 0, "upper": 10}, description="Too many recent delinquencies"),
    FeatureCreate(name="utilization", source_columns=["utilization"], transform="passthrough", monotone=1,
                  description="Credit utilization too high"),
    FeatureCreate(name="age_band", source_columns=["age"], transform="bucket", params={"edges": [25, 35, 50, 65]},
                  description="Age band"),
    FeatureCreate(name="income_missing", source_columns=["income"], transform="missing_indicator",
                  description="Income not stated"),
    FeatureCreate(name="region", source_columns=["region"], transform="categorical", description="Region"),
]


async def _chunks(data: bytes):
    for i in range(0, len(data), 1 << 16):
        yield data[i:i + (1 << 16)]


def parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


async def seed_demo(state, tenant_id) -> None:
    exists = await state.db.fetchval("SELECT 1 FROM credit_datasets WHERE tenant_id = $1 AND name = $2",
                                     tenant_id, DEMO_NAME)
    if exists:
        return
    version = await datasets.upload(state, tenant_id, _chunks(parquet_bytes(generate(5000, seed=1))),
                                    name=DEMO_NAME, target="bad", bad_value=None, time_column=None)
    for f in DEMO_FEATURES:
        try:
            await catalog.create_feature(state.db, tenant_id, f)
        except Conflict:
            pass
    set_id = await catalog.create_feature_set(state.db, tenant_id, "demo-scorecard", "The demo's features")
    fsv = await catalog.create_set_version(state.db, tenant_id, set_id, [f.name for f in DEMO_FEATURES], "$")
    run = await runs.create(state, tenant_id, RunSpec(dataset_version_id=version.id, feature_set_version_id=fsv),
                            queue=False)
    job_id, task = await run_here(state, "credit.run", RunJob(run_id=run.id), tenant_id=tenant_id)
    await runs.link_job(state.db, tenant_id, run.id, job_id)
    await task
    log.info("credit demo loaded", tenant=str(tenant_id), run=str(run.id))

"""Batch scoring of a table too large for one job: one partition (Parquet file) per job.

`core.score_partitions` pins the version to score with, lists the `.parquet`
files under the request's prefix (in the tenant's store: another tenant's
prefix names an empty folder), and queues one `core.score_partition` job per
file not yet scored, so every worker takes a share. It then works through
the same list itself from the far end, so it never just waits on jobs a
busy queue has not started (with one worker it scores everything itself).

Every partition's output goes under one deterministic key (the output
prefix + the file's path under the input prefix) and is written once: a
scorer first claims the key in Redis (SET NX with an expiry, so a claim of a
scorer that died lapses and another takes over), and skips a key whose
object exists. A re-run of the same request therefore finds every output
there and scores nothing; duplicate jobs are harmless.

Each partition is scored by `score_table`, the core's ONNX sessions, as a
plugin's batch job and the HTTP endpoints are.
"""

from __future__ import annotations

import asyncio
import io
import uuid
from typing import Any
from uuid import UUID

import msgspec
import pyarrow as pa
import pyarrow.parquet as pq

from flywheel.contracts.jobs import JobRead
from flywheel.contracts.models import ScorePartition, ScorePartitions, TableScoreRequest
from flywheel.server.errors import Conflict, InvalidInput, NotFound
from flywheel.server.jobs.queue import enqueue
from flywheel.server.jobs.status import job_status
from flywheel.server.models import registry
from flywheel.server.models.families import family_of
from flywheel.server.store.base import ObjectNotFound, StoreError, validate_key

# A claimed partition whose scorer has not finished within this is taken over (it died).
CLAIM_S = 900
WAIT_S = 0.2  # how often the parent looks at partitions another scorer has claimed
RESERVED = ("score", "margin")
OUTPUT_ROOT = "batch_scores/"  # every output key is under it  # output columns a kept input column may not shadow


class BatchScoringError(Exception):
    """A batch scoring job cannot go on; the message says why."""


# -- the request ------------------------------------------------------------------


async def queue_batch_score(state, tenant_id: UUID, family: str, request: TableScoreRequest) -> JobRead:
    """Check a `POST /v1/models/{family}/batch_score` (or CLI) request and queue its job."""
    family_of(state, family)
    for field, prefix in (("input_prefix", request.input_prefix), ("output_prefix", request.output_prefix)):
        if prefix is not None and not is_prefix(prefix):
            raise InvalidInput(f"{prefix!r} is not a key prefix: no leading '/', no empty, '.' or '..' segments",
                               field=f"$.{field}")
    for i, name in enumerate(request.keep_columns):
        if name in RESERVED:
            raise InvalidInput(f"{name!r} is an output column; keep it under another name",
                               field=f"$.keep_columns[{i}]")
    store = state.tenant_store(tenant_id)
    if not [key async for key in parquet_keys(store, request.input_prefix, limit=1)]:
        raise NotFound(f"no Parquet files under {request.input_prefix!r}", field="$.input_prefix")
    await pinned_version(state, tenant_id, family, request.version)
    payload = ScorePartitions(family=family, **msgspec.structs.asdict(request))
    job_id = await enqueue(state, "core.score_partitions", payload, tenant_id=tenant_id)
    return await job_status(state.db, job_id, tenant_id)


async def pinned_version(state, tenant_id: UUID, family: str, version: int | None) -> int:
    """The version every partition is scored with: the one asked for (ready), else the active one."""
    if version is None:
        active = await registry.active_version(state.db, tenant_id, family)
        if active is None:
            raise NotFound(f"no active version of model {family!r}; train one and activate it, or name a version",
                           field="$.version")
        return active
    found = await registry.get_version(state.db, tenant_id, family, version)
    if found.state != "ready":
        raise Conflict(f"version {version} of {family!r} is {found.state}; only a ready version scores",
                       code="model_not_ready", field="$.version")
    return version


def is_prefix(prefix: str) -> bool:
    try:
        return bool(prefix) and validate_key(prefix, allow_empty=True) == prefix
    except StoreError:
        return False


async def parquet_keys(store, prefix: str, limit: int | None = None):
    """The `.parquet` keys under `prefix`, in key order."""
    n = 0
    async for info in store.list(prefix):
        if info.key.endswith(".parquet"):
            yield info.key
            n += 1
            if limit is not None and n >= limit:
                return


def output_prefix_of(request: ScorePartitions, version: int) -> str:
    """Where the scores go: `batch_scores/` + the request's prefix, else
    `batch_scores/{family}/v{version}/{input_prefix}`. Always under `batch_scores/`, so a batch job
    never writes among models, events or a plugin's files; the version is in the default, so
    scores of a newer version never count as an older run's."""
    if request.output_prefix:
        prefix = request.output_prefix.removeprefix(OUTPUT_ROOT)
        return OUTPUT_ROOT + (prefix if prefix.endswith("/") else prefix + "/")
    base = request.input_prefix if request.input_prefix.endswith("/") else request.input_prefix + "/"
    return f"{OUTPUT_ROOT}{request.family}/v{version}/{base}"


# -- the jobs ---------------------------------------------------------------------


async def score_partitions(ctx, payload: ScorePartitions) -> dict[str, Any]:
    """`core.score_partitions`: fan a table's partitions out over the workers, and help score them."""
    if ctx.tenant_id is None:
        raise BatchScoringError("batch scoring belongs to a tenant: queue core.score_partitions with a tenant")
    family_of(ctx.state, payload.family)
    if not is_prefix(payload.input_prefix) or (payload.output_prefix and not is_prefix(payload.output_prefix)):
        raise BatchScoringError("input_prefix and output_prefix must be key prefixes (no '.', '..' or empty segments)")
    keys = [key async for key in parquet_keys(ctx.store, payload.input_prefix)]  # the tenant's own store
    if not keys:
        raise BatchScoringError(f"no Parquet files under {payload.input_prefix!r} in the object store")
    version = await pinned_version(ctx.state, ctx.tenant_id, payload.family, payload.version)
    out_prefix = output_prefix_of(payload, version)
    parts = [ScorePartition(family=payload.family, version=version, input_key=key,
                            output_key=out_prefix + key[len(payload.input_prefix):].lstrip("/"),
                            keep_columns=payload.keep_columns) for key in keys]
    todo = [p for p in parts if not await _exists(ctx.store, p.output_key)]
    skipped = len(parts) - len(todo)
    await ctx.progress(skipped, len(parts), f"{skipped} of {len(parts)} partitions already scored", force=True)
    for part in todo[1:]:  # the first is the parent's own: it starts from the far end, see below
        await enqueue(ctx.state, "core.score_partition", part, tenant_id=ctx.tenant_id)
    scored_here = await _work_through(ctx, list(reversed(todo)), len(parts))
    await ctx.progress(len(parts), len(parts), "done", force=True)
    return {"family": payload.family, "version": version, "partitions": len(parts), "already_scored": skipped,
            "scored_here": scored_here, "scored_by_partition_jobs": len(todo) - scored_here,
            "output_prefix": out_prefix}


async def _work_through(ctx, pending: list[ScorePartition], total: int) -> int:
    """Score what nobody has claimed, wait for what others have, until every output exists."""
    scored_here = 0
    while pending:
        still = []
        for part in pending:
            outcome = await score_partition_once(ctx.state, ctx.tenant_id, part)
            scored_here += outcome == "scored"
            if outcome == "busy":
                still.append(part)
        pending = still
        await ctx.progress(total - len(pending), total, f"{total - len(pending)} of {total} partitions scored")
        if pending:
            await asyncio.sleep(WAIT_S)
    return scored_here


async def score_partition(ctx, payload: ScorePartition) -> dict[str, Any]:
    """`core.score_partition`: score one partition unless it is scored or being scored."""
    if ctx.tenant_id is None:
        raise BatchScoringError("batch scoring belongs to a tenant: queue core.score_partition with a tenant")
    if not payload.output_key.startswith(OUTPUT_ROOT) or not is_prefix(payload.output_key):
        raise BatchScoringError(f"output_key must be a key under {OUTPUT_ROOT!r}, got {payload.output_key!r}")
    outcome = await score_partition_once(ctx.state, ctx.tenant_id, payload)
    return {"input_key": payload.input_key, "output_key": payload.output_key, "outcome": outcome}


async def score_partition_once(state, tenant_id: UUID, part: ScorePartition) -> str:
    """"scored" (by this call), "done" (its output exists) or "busy" (another scorer holds its claim)."""
    store = state.tenant_store(tenant_id)
    if await _exists(store, part.output_key):
        return "done"
    claim, token = f"flywheel:batch_score:{tenant_id}:{part.output_key}", uuid.uuid4().hex
    if not await state.redis.set(claim, token, nx=True, ex=CLAIM_S):
        return "busy"
    try:
        if await _exists(store, part.output_key):  # finished between the look and the claim
            return "done"
        table = pq.read_table(io.BytesIO(await store.get(part.input_key)))
        await store.put(part.output_key, await scored_table(state, tenant_id, part, table),
                        content_type="application/vnd.apache.parquet")
        return "scored"
    finally:
        if await state.redis.get(claim) == token.encode():  # a lapsed claim may be another scorer's now
            await state.redis.delete(claim)


async def scored_table(state, tenant_id: UUID, part: ScorePartition, table: pa.Table) -> bytes:
    """The partition's kept columns, `score` and `margin`, row for row, as Parquet bytes."""
    from flywheel.server.models.onnx import sigmoid
    from flywheel.server.models.runtime import score_table

    missing = [name for name in part.keep_columns if name not in table.column_names]
    if missing:
        raise BatchScoringError(f"{part.input_key!r} has no column {', '.join(map(repr, missing))} to keep")
    _, margins = await score_table(state, tenant_id, part.family, table, version=part.version, margin=True)
    out = table.select(part.keep_columns).append_column("score", pa.array(sigmoid(margins))) \
        .append_column("margin", pa.array(margins))
    out = out.replace_schema_metadata({b"flywheel.scored": msgspec.json.encode(
        {"family": part.family, "version": part.version, "input_key": part.input_key})})
    sink = io.BytesIO()
    pq.write_table(out, sink)
    return sink.getvalue()


async def _exists(store, key: str) -> bool:
    try:
        await store.head(key)
    except ObjectNotFound:
        return False
    return True

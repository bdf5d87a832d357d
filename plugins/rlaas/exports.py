"""Training data exports: SFT and DPO data sets as JSONL in the tenant's object store.

An export is a row of `rlaas_exports` and, once the `rlaas.export` job has run,
two objects: `rlaas/exports/{export_id}/data.jsonl` and `manifest.json`. The
rows are in the formats TRL reads as they are (docs/rlaas.md, "Training data
exports"):

- SFT, one interaction a line: ``{"messages": [...request messages...,
  {"role": "assistant", "content": answer}]}``, where the answer is the user's
  correction when the interaction has an edit (the latest), else what the
  policy answered.
- DPO, one preference pair a line (rlaas_pairs): ``{"prompt": [...request
  messages...], "chosen": [{"role": "assistant", "content": ...}],
  "rejected": [{"role": "assistant", "content": ...}]}``.

The job streams: rows are read in keyset batches, written to a temporary file
as they come and hashed on the way, and the file is uploaded once complete,
so an export of any size holds one batch in memory. It may run more than once
(a retried worker): each run writes the same keys again, and a succeeded
export is left as it is.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import msgspec

from flywheel.contracts.jobs import JobSpec
from flywheel.plugins.rlaas.export_rows import dpo_example, sft_example
from flywheel.plugins.rlaas.export_types import (
    FORMATS,
    ExportCreate,
    ExportDownload,
    ExportPage,
    ExportRead,
    ExportSelection,
    Manifest,
    RunExport,
)
from flywheel.server.plugin_api import (
    ApiError,
    AppState,
    InvalidInput,
    JobCancelled,
    NotFound,
    decode_cursor,
    encode_cursor,
    enqueue,
    tenant_store,
)

JOB = "rlaas.export"
BATCH = 1000
DOWNLOAD_EXPIRES_S = 3600
_COLUMNS = ", ".join(f for f in ExportRead.__struct_fields__)
_encode = msgspec.json.Encoder().encode


def data_key(export_id: UUID) -> str:
    return f"rlaas/exports/{export_id}/data.jsonl"


def manifest_key(export_id: UUID) -> str:
    return f"rlaas/exports/{export_id}/manifest.json"


# -- records ---------------------------------------------------------------------------------


def _read(row: Any) -> ExportRead:
    fields = dict(row)
    fields["selection"] = msgspec.convert(fields["selection"], ExportSelection)
    return ExportRead(**fields)


async def export_record(state: AppState, tenant_id: UUID, export_id: UUID) -> ExportRead:
    """One of the tenant's exports (NotFound if it has none by that id, whoever else might)."""
    row = await state.db.fetchrow(f"SELECT {_COLUMNS} FROM rlaas_exports WHERE tenant_id = $1 AND export_id = $2",
                                  tenant_id, export_id)
    if row is None:
        raise NotFound("no such export")
    return _read(row)


def check_selection(body: ExportCreate) -> None:
    """Refuse what does not apply to the export's kind, naming the field."""
    s = body.selection
    if body.kind == "dpo" and s.min_reward is not None:
        raise InvalidInput("min_reward selects SFT rows; a DPO export selects pairs by `sources`",
                           field="$.selection.min_reward")
    if body.kind == "sft" and s.sources is not None:
        raise InvalidInput("sources selects DPO pairs; an SFT export selects by `min_reward`",
                           field="$.selection.sources")
    if s.since is not None and s.until is not None and s.since >= s.until:
        raise InvalidInput("until must be after since", field="$.selection.until")


async def _enqueue(state: AppState, tenant_id: UUID, payload: RunExport) -> UUID:
    return await enqueue(state, JOB, payload, tenant_id=tenant_id)


async def create_export(state: AppState, tenant_id: UUID, body: ExportCreate, *,
                        start: Callable[..., Any] = _enqueue) -> ExportRead:
    """Record a queued export and start its job (`start(state, tenant_id, RunExport)` returns the
    job id: a worker's queue by default; the CLI runs it in its own process)."""
    check_selection(body)
    export_id = uuid4()
    await state.db.execute(
        "INSERT INTO rlaas_exports (export_id, tenant_id, kind, status, selection) VALUES ($1, $2, $3, 'queued', $4)",
        export_id, tenant_id, body.kind, msgspec.to_builtins(body.selection))
    try:
        job_id = await start(state, tenant_id, RunExport(export_id=export_id))
    except BaseException:  # no job will ever fill it in: an export without one must not stay "queued"
        await state.db.execute("DELETE FROM rlaas_exports WHERE tenant_id = $1 AND export_id = $2",
                               tenant_id, export_id)
        raise
    await state.db.execute("UPDATE rlaas_exports SET job_id = $3 WHERE tenant_id = $1 AND export_id = $2",
                           tenant_id, export_id, job_id)
    return await export_record(state, tenant_id, export_id)


async def list_exports(state: AppState, tenant_id: UUID, *, kind: str | None = None, status: str | None = None,
                       limit: int = 50, cursor: str | None = None) -> ExportPage:
    """The tenant's exports, newest first, in keyset pages."""
    conditions, args = ["tenant_id = $1"], [tenant_id]
    for column, value in (("kind", kind), ("status", status)):
        if value is not None:
            args.append(value)
            conditions.append(f"{column} = ${len(args)}")
    if cursor:
        created, last = decode_cursor(cursor, datetime, UUID)
        if created.tzinfo is None:
            raise InvalidInput("invalid cursor", field="query.cursor")
        args += [created, last]
        conditions.append(f"(created_at, export_id) < (${len(args) - 1}, ${len(args)})")
    args.append(limit + 1)
    rows = await state.db.fetch(
        f"""SELECT {_COLUMNS} FROM rlaas_exports WHERE {' AND '.join(conditions)}
            ORDER BY created_at DESC, export_id DESC LIMIT ${len(args)}""", *args)
    items = [_read(r) for r in rows[:limit]]
    more = len(rows) > limit
    return ExportPage(items=items, next_cursor=encode_cursor(items[-1].created_at, items[-1].export_id)
                      if more else None)


def finished(record: ExportRead) -> ExportRead:
    """The export if its data file is written, else 409 `export_not_ready` saying why."""
    if record.status != "succeeded":
        why = f": {record.error}" if record.error else ""
        raise ApiError(f"the export is {record.status}{why}", status=409, code="export_not_ready")
    return record


async def export_download(state: AppState, tenant_id: UUID, export_id: UUID, *,
                          expires_s: int = DOWNLOAD_EXPIRES_S) -> ExportDownload:
    """Where to fetch the data file: a presigned URL on S3, else the API's streaming path."""
    record = finished(await export_record(state, tenant_id, export_id))
    url = await tenant_store(state, tenant_id).presigned_url(record.object_key, expires_s=expires_s)
    common = {"export_id": export_id, "size_bytes": record.size_bytes, "sha256": record.sha256,
              "row_count": record.row_count}
    if url is None:  # a local folder cannot sign URLs: the bytes go through the API
        return ExportDownload(method="stream", url=f"/v1/rlaas/exports/{export_id}/data", expires_at=None, **common)
    return ExportDownload(method="presigned_url", url=url, expires_at=datetime.now(UTC) + timedelta(seconds=expires_s),
                          **common)


async def data_chunks(state: AppState, tenant_id: UUID, record: ExportRead, *,
                      chunk: int = 1 << 20) -> AsyncIterator[bytes]:
    """The data file's bytes in ranges of `chunk`, never the whole file in memory."""
    store = tenant_store(state, tenant_id)
    for start in range(0, record.size_bytes or 0, chunk):
        yield await store.get_range(record.object_key, start, min(start + chunk, record.size_bytes))


# -- selecting rows --------------------------------------------------------------------------------


class _Kind(msgspec.Struct, frozen=True):
    """How one kind of export selects its rows: a FROM clause, the condition of each selection
    field (`{}` is the parameter's number), the keyset the batches walk, and the row shaper."""

    select: str
    source: str
    base: str
    conditions: dict[str, str]
    key: tuple[str, str]
    example: Callable[[Any], tuple[dict | None, str | None]]
    fields: dict[str, str]


KINDS = {
    # What a user saw: the primary call's answer, chat completions that succeeded.
    "sft": _Kind(
        select="""i.request, i.response,
            (SELECT f.corrected_text FROM rlaas_feedback f
              WHERE f.tenant_id = i.tenant_id AND f.interaction_id = i.interaction_id AND f.kind = 'edit'
              ORDER BY f.ts DESC, f.event_id DESC LIMIT 1) AS corrected_text""",
        source="""rlaas_interactions i LEFT JOIN rlaas_rewards r
                    ON r.tenant_id = i.tenant_id AND r.interaction_id = i.interaction_id""",
        base="i.tenant_id = $1 AND i.endpoint = 'chat.completions' AND i.role = 'primary' "
             "AND i.status BETWEEN 200 AND 299",
        conditions={"route": "i.route = ${}", "policy": "i.policy = ${}", "policy_version": "i.policy_version = ${}",
                    "since": "i.ts >= ${}", "until": "i.ts < ${}", "min_reward": "r.reward >= ${}"},
        key=("i.ts", "i.interaction_id"), example=sft_example,
        fields={"messages": "the request's messages, then {role: assistant, content: the answer}; the answer is "
                            "the user's latest correction (an edit feedback) where there is one, else the policy's"}),
    "dpo": _Kind(
        select="""p.chosen_text, pi.request AS prompt_request, c.response AS chosen_response,
                  x.response AS rejected_response""",
        source="""rlaas_pairs p
            JOIN rlaas_interactions pi ON pi.tenant_id = p.tenant_id AND pi.interaction_id = p.interaction_id
            LEFT JOIN rlaas_interactions c ON c.tenant_id = p.tenant_id AND c.interaction_id = p.chosen_interaction_id
            LEFT JOIN rlaas_interactions x
                   ON x.tenant_id = p.tenant_id AND x.interaction_id = p.rejected_interaction_id""",
        base="p.tenant_id = $1",
        conditions={"route": "p.route = ${}", "policy": "pi.policy = ${}", "policy_version": "pi.policy_version = ${}",
                    "since": "p.ts >= ${}", "until": "p.ts < ${}", "sources": "p.source = ANY(${}::text[])"},
        key=("p.ts", "p.pair_id"), example=dpo_example,
        fields={"prompt": "the prompt interaction's request messages",
                "chosen": "[{role: assistant, content}]: the preferred answer (an edit's corrected text, or the "
                          "chosen interaction's answer)",
                "rejected": "[{role: assistant, content}]: the other answer"}),
}


def where(kind: _Kind, tenant_id: UUID, selection: ExportSelection) -> tuple[list[str], list[Any]]:
    conditions, args = [kind.base], [tenant_id]
    for name, sql in kind.conditions.items():
        value = getattr(selection, name)
        if value is not None:
            args.append(value)
            conditions.append(sql.format(len(args)))
    return conditions, args


async def matched(db: Any, kind: _Kind, tenant_id: UUID, selection: ExportSelection) -> int:
    conditions, args = where(kind, tenant_id, selection)
    return await db.fetchval(f"SELECT count(*) FROM {kind.source} WHERE {' AND '.join(conditions)}", *args)


async def batches(db: Any, kind: _Kind, tenant_id: UUID, selection: ExportSelection) -> AsyncIterator[list]:
    """The selected rows, oldest first, BATCH at a time (keyset pages: no transaction held open)."""
    last: tuple | None = None
    while True:
        conditions, args = where(kind, tenant_id, selection)
        if last is not None:
            args += list(last)
            conditions.append(f"({kind.key[0]}, {kind.key[1]}) > (${len(args) - 1}, ${len(args)})")
        rows = await db.fetch(
            f"""SELECT {kind.key[0]} AS k1, {kind.key[1]} AS k2, {kind.select} FROM {kind.source}
                WHERE {' AND '.join(conditions)} ORDER BY {kind.key[0]}, {kind.key[1]} LIMIT {BATCH}""", *args)
        if not rows:
            return
        yield rows
        last = (rows[-1]["k1"], rows[-1]["k2"])


# -- the job ---------------------------------------------------------------------------------------


class _Written(msgspec.Struct):
    rows: int = 0
    size: int = 0
    sha256: str = ""
    skipped: dict[str, int] = {}


async def write_rows(ctx: Any, kind: _Kind, selection: ExportSelection, path: Path) -> _Written:
    """Write the selected examples to `path` batch by batch, hashing the bytes as they go."""
    total = await matched(ctx.db, kind, ctx.tenant_id, selection)
    out, digest, seen, cap = _Written(skipped={}), hashlib.sha256(), 0, selection.max_rows
    with path.open("wb") as f:
        async for rows in batches(ctx.db, kind, ctx.tenant_id, selection):
            lines = []
            for row in rows:
                if cap is not None and out.rows + len(lines) >= cap:
                    break
                example, why = kind.example(row)
                if example is None:
                    out.skipped[why] = out.skipped.get(why, 0) + 1
                else:
                    lines.append(_encode(example))
            chunk = b"".join(line + b"\n" for line in lines)
            f.write(chunk)
            digest.update(chunk)
            out.rows, out.size, seen = out.rows + len(lines), out.size + len(chunk), seen + len(rows)
            await ctx.progress(seen, total, f"{out.rows:,} rows written")
            if cap is not None and out.rows >= cap:
                break
    out.sha256 = digest.hexdigest()
    return out


_SUCCEEDED = """UPDATE rlaas_exports SET status = 'succeeded', row_count = $3, skipped = $4, size_bytes = $5,
                  sha256 = $6, object_key = $7, manifest_key = $8, finished_at = $9, error = NULL
                WHERE tenant_id = $1 AND export_id = $2"""


async def run_export(ctx: Any, export_id: UUID, kind_name: str, selection: ExportSelection,
                     created_at: datetime) -> _Written:
    kind = KINDS[kind_name]
    with tempfile.TemporaryDirectory(prefix="flywheel-export-") as tmp:
        path = Path(tmp) / "data.jsonl"
        written = await write_rows(ctx, kind, selection, path)
        await ctx.store.put_file(data_key(export_id), path, content_type="application/x-ndjson")
    now = datetime.now(UTC)
    manifest = Manifest(export_id=export_id, kind=kind_name, format=FORMATS[kind_name],
                        selection=msgspec.to_builtins(selection), row_count=written.rows, skipped=written.skipped,
                        size_bytes=written.size, sha256=written.sha256, data_key=data_key(export_id),
                        created_at=created_at, finished_at=now, fields=kind.fields)
    await ctx.store.put(manifest_key(export_id), msgspec.json.format(_encode(manifest)),
                        content_type="application/json")
    await ctx.db.execute(_SUCCEEDED, ctx.tenant_id, export_id, written.rows, written.skipped, written.size,
                         written.sha256, data_key(export_id), manifest_key(export_id), now)
    await ctx.progress(1, 1, f"{written.rows:,} rows written", force=True)
    return written


async def _fail(ctx: Any, export_id: UUID, error: str) -> None:
    await ctx.db.execute("""UPDATE rlaas_exports SET status = 'failed', error = $3, finished_at = now()
                            WHERE tenant_id = $1 AND export_id = $2""", ctx.tenant_id, export_id, error[:2000])


async def export_job(ctx: Any, payload: RunExport) -> dict:
    """Write one export of the job's tenant; an export already written is left as it is."""
    row = await ctx.db.fetchrow(
        """UPDATE rlaas_exports SET status = 'running', error = NULL, finished_at = NULL
           WHERE tenant_id = $1 AND export_id = $2 AND status <> 'succeeded'
           RETURNING kind, selection, created_at""", ctx.tenant_id, payload.export_id)
    if row is None:  # not this tenant's (NotFound fails the job), or written by an earlier run
        record = await export_record(ctx.state, ctx.tenant_id, payload.export_id)
        return {"export_id": str(record.export_id), "rows": record.row_count, "sha256": record.sha256}
    selection = msgspec.convert(row["selection"], ExportSelection)
    try:
        written = await run_export(ctx, payload.export_id, row["kind"], selection, row["created_at"])
    except JobCancelled:
        await _fail(ctx, payload.export_id, "cancelled")
        raise
    except Exception as exc:
        await _fail(ctx, payload.export_id, f"{type(exc).__name__}: {exc}")
        raise
    return {"export_id": str(payload.export_id), "rows": written.rows, "skipped": written.skipped,
            "sha256": written.sha256}


SPEC = JobSpec(name=JOB, func=export_job, payload=RunExport, timeout_s=6 * 3600, max_tries=3,
               description="Write an rlaas SFT or DPO export as JSONL to the tenant's object store")

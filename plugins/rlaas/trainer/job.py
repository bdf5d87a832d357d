"""`rlaas.train_adapter`: train one adapter of the job's tenant, and store it whole or not at all.

1. The adapter's row goes `running` (a finished one is left as it is: a
   duplicate delivery does nothing).
2. The export's data file is fetched to a temporary folder and its SHA-256
   checked against the export's before anything trains on it.
3. `train_lora` runs on a thread (the event loop stays free for the worker's
   other jobs); its callback reports each step and loss to the job, and a
   cancelled job stops it after the current step.
4. Only then are the files written under `rlaas/adapters/{id}/`, and the
   row marked `succeeded` with its metrics. A run that fails or is
   cancelled removes whatever it wrote there, so an adapter's files are all
   there or none is; a retried run starts from an empty prefix.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import json
import tempfile
import threading
from pathlib import Path
from typing import Any
from uuid import UUID

import msgspec

from flywheel.contracts.jobs import JobSpec
from flywheel.plugins.rlaas.adapter_types import AdapterFile, AdapterRead, TrainAdapter
from flywheel.plugins.rlaas.adapters import JOB, adapter_read, get_adapter, object_prefix
from flywheel.plugins.rlaas.export_types import ExportRead
from flywheel.plugins.rlaas.exports import export_record, finished
from flywheel.plugins.rlaas.trainer.base_models import allowed_base_models, base_model_problem, resolved
from flywheel.server.plugin_api import JobCancelled, job_status

EXTRA = "the LoRA trainer needs the llm-train extra: pip install 'flywheel[llm-train]'"
NEEDS = ("torch", "transformers", "trl", "peft", "datasets")
STOP_WAIT_S = 120  # how long a cancelled job waits for the training thread to see the stop
_COLUMNS = ", ".join(AdapterRead.__struct_fields__)
_encode = msgspec.json.Encoder().encode


class TrainerUnavailable(RuntimeError):
    """This process lacks the `llm-train` extra."""


def require_extra() -> None:
    missing = [name for name in NEEDS if importlib.util.find_spec(name) is None]
    if missing:
        raise TrainerUnavailable(f"{EXTRA} (missing here: {', '.join(missing)})")


# -- the adapter's row ------------------------------------------------------------------------


async def _start(ctx: Any, adapter_id: UUID) -> AdapterRead | None:
    row = await ctx.db.fetchrow(
        f"""UPDATE rlaas_adapters SET status = 'running', job_id = $3, started_at = now(), error = NULL
            WHERE tenant_id = $1 AND id = $2 AND status IN ('queued', 'running') RETURNING {_COLUMNS}""",
        ctx.tenant_id, adapter_id, ctx.job_id)
    return adapter_read(row) if row else None


async def _finish(ctx: Any, adapter_id: UUID, status: str, error: str | None) -> None:
    await ctx.db.execute(
        """UPDATE rlaas_adapters SET status = $3, error = $4, finished_at = now()
           WHERE tenant_id = $1 AND id = $2 AND status = 'running'""",
        ctx.tenant_id, adapter_id, status, None if error is None else error[:2000])


async def _succeed(ctx: Any, adapter_id: UUID, manifest: dict, metrics: dict, files: list[AdapterFile]) -> None:
    await ctx.db.execute(
        """UPDATE rlaas_adapters SET status = 'succeeded', data_manifest = $3, metrics = $4, files = $5,
               finished_at = now(), error = NULL
           WHERE tenant_id = $1 AND id = $2 AND status = 'running'""",
        ctx.tenant_id, adapter_id, manifest, metrics, msgspec.to_builtins(files))


# -- the data ---------------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


async def fetch_export(ctx: Any, export_id: UUID, path: Path) -> tuple[ExportRead, dict]:
    """The export's data file at `path`, checked against its SHA-256, and its manifest."""
    record = finished(await export_record(ctx.state, ctx.tenant_id, export_id))
    if not record.row_count:
        raise ValueError(f"export {export_id} has no rows to train on")
    await ctx.store.get_file(record.object_key, path)
    digest = await asyncio.to_thread(_sha256, path)
    if digest != record.sha256:
        raise ValueError(f"export {export_id}'s data file does not match its SHA-256 "
                         f"(stored {record.sha256}, read {digest}): it changed after it was written")
    manifest = json.loads(await ctx.store.get(record.manifest_key))
    return record, manifest


# -- training on a thread ---------------------------------------------------------------------


def _reporter(ctx: Any, loop: asyncio.AbstractEventLoop, stop: threading.Event):
    """The callback's `report`, run on the training thread: the job's progress, on the job's loop."""

    def report(step: int, total: int, loss: float) -> bool:
        if stop.is_set():
            return False
        if total == 0:  # train.WAITING
            message = "waiting for another training on this worker to finish"
        else:
            message = f"step {step}/{total}" + (f" loss {loss:.4f}" if loss == loss else "")  # NaN before step 1
        pending = asyncio.run_coroutine_threadsafe(ctx.progress(step, total, message, force=step <= 1), loop)
        try:
            pending.result(timeout=60)
        except JobCancelled:
            stop.set()
        except TimeoutError:
            pending.cancel()  # a slow database must not stop training; the next step reports again
        return not stop.is_set()

    return report


async def run_training(ctx: Any, adapter: AdapterRead, data: Path, work: Path) -> Any:
    from flywheel.plugins.rlaas.trainer.train import train_lora  # torch and TRL: only when training

    stop = threading.Event()
    report = _reporter(ctx, asyncio.get_running_loop(), stop)
    thread = asyncio.ensure_future(asyncio.to_thread(
        train_lora, resolved(adapter.base_model), data, adapter.method, adapter.config, work, report))
    try:
        return await asyncio.shield(thread)
    except asyncio.CancelledError:  # the worker aborted the task: let the thread see it and end
        stop.set()
        await asyncio.wait([thread], timeout=STOP_WAIT_S)
        raise


# -- storing the result -----------------------------------------------------------------------


def _files_of(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


async def store_adapter(ctx: Any, adapter: AdapterRead, export: ExportRead, manifest: dict, result: Any,
                        work: Path) -> tuple[dict, list[AdapterFile]]:
    """Write the adapter's files; returns (metrics, files)."""
    from flywheel.plugins.rlaas.trainer.train import library_versions

    prefix = object_prefix(adapter.id)
    metrics = msgspec.to_builtins(result)
    metrics.pop("stopped", None)
    training = {"adapter_id": str(adapter.id), "name": adapter.name, "version": adapter.version,
                "method": adapter.method, "base_model": adapter.base_model, "export_id": str(export.export_id),
                "export_sha256": export.sha256, "config": msgspec.to_builtins(adapter.config),
                "libraries": library_versions()}
    for name, value in (("training_config.json", training), ("data_manifest.json", manifest),
                        ("metrics.json", metrics)):
        (work / name).write_bytes(msgspec.json.format(_encode(value)))
    local = [(f"adapter/{p.relative_to(work / 'adapter').as_posix()}", p) for p in _files_of(work / "adapter")]
    local += [(name, work / name) for name in ("training_config.json", "data_manifest.json", "metrics.json")]
    files = []
    for key, path in local:
        await ctx.store.put_file(prefix + key, path)
        files.append(AdapterFile(key=prefix + key, size=path.stat().st_size, sha256=await asyncio.to_thread(
            _sha256, path)))
    return metrics, files


# -- the job ----------------------------------------------------------------------------------


async def _train(ctx: Any, adapter: AdapterRead, work: Path) -> dict:
    require_extra()
    why = base_model_problem(allowed_base_models(ctx.state), adapter.base_model)  # the worker's allow-list
    if why:
        raise ValueError(f"base model: {why}")
    export, manifest = await fetch_export(ctx, adapter.export_id, work / "data.jsonl")
    result = await run_training(ctx, adapter, work / "data.jsonl", work)
    if result.stopped:
        raise JobCancelled(f"training of adapter {adapter.name} v{adapter.version} was cancelled")
    await ctx.progress(result.steps, result.steps, f"step {result.steps}/{result.steps} loss "
                       f"{result.final_loss:.4f}; storing the adapter", force=True)
    metrics, files = await store_adapter(ctx, adapter, export, manifest, result, work)
    await _succeed(ctx, adapter.id, manifest, metrics, files)
    return {"adapter_id": str(adapter.id), "name": adapter.name, "version": adapter.version,
            "steps": result.steps, "final_loss": result.final_loss, "step_time_s": result.step_time_s}


async def _cancelled_by_request(ctx: Any) -> bool:
    """After the worker aborted the task: a cancel someone asked for, or a worker stopping (to be retried)?"""
    shown = (await job_status(ctx.state, ctx.job_id, tenant_id=ctx.tenant_id)).progress
    try:  # the same step and total, so the job still says how far training got
        await ctx.progress(shown.current, shown.total, f"{shown.message or ''}; stopping".lstrip("; "), force=True)
    except JobCancelled:
        return True
    return False


async def train_adapter_job(ctx: Any, payload: TrainAdapter) -> dict:
    adapter = await _start(ctx, payload.adapter_id)
    if adapter is None:  # not this tenant's (NotFound fails the job), or finished by an earlier run
        done = await get_adapter(ctx.db, ctx.tenant_id, payload.adapter_id)
        return {"adapter_id": str(done.id), "status": done.status}
    prefix = object_prefix(adapter.id)
    await ctx.store.delete_prefix(prefix)  # what an earlier, killed run may have left
    try:
        with tempfile.TemporaryDirectory(prefix="flywheel-lora-") as tmp:
            return await _train(ctx, adapter, Path(tmp))
    except JobCancelled:
        await ctx.store.delete_prefix(prefix)
        await _finish(ctx, adapter.id, "cancelled", "cancelled")
        raise
    except asyncio.CancelledError:
        await ctx.store.delete_prefix(prefix)
        if await _cancelled_by_request(ctx):
            await _finish(ctx, adapter.id, "cancelled", "cancelled")
        raise
    except Exception as exc:
        await ctx.store.delete_prefix(prefix)
        await _finish(ctx, adapter.id, "failed", f"{type(exc).__name__}: {exc}")
        raise


SPEC = JobSpec(name=JOB, func=train_adapter_job, payload=TrainAdapter, timeout_s=24 * 3600, max_tries=2,
               description="Fine-tune an rlaas LoRA adapter on an export (TRL + PEFT; the llm-train extra)")

"""The rlaas training pages of the console: exports (SFT and DPO data sets) and LoRA trainer
runs with their progress, and one adapter with its loss curve and the policies it serves.

They read through the same functions as `/v1/rlaas/exports` and `/v1/rlaas/adapters`.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Controller, get
from litestar.datastructures import State
from litestar.params import FromPath
from litestar.response import Template

from flywheel.plugins.rlaas import policies
from flywheel.plugins.rlaas.adapters import get_adapter, list_adapters
from flywheel.plugins.rlaas.exports import list_exports
from flywheel.server.plugin_api import Caller, job_status, line_chart

ACTIVE = ("queued", "running")


def _size(n: int | None) -> str:
    if n is None:
        return ""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return ""


def _num(x: float | None, digits: int = 3) -> str:
    return "" if x is None else f"{x:.{digits}f}"


async def _progress(state: Any, tenant_id: UUID, items: list[Any]) -> dict[UUID, Any]:
    """The job of each export or adapter still queued or running: its progress is the job's."""
    out = {}
    for item in items:
        if item.status in ACTIVE and item.job_id is not None:
            out[item.job_id] = await job_status(state, item.job_id, tenant_id=tenant_id)
    return out


def _percent(job: Any) -> float | None:
    p = job.progress if job is not None else None
    return None if p is None or not p.total else 100.0 * p.current / p.total


HELPERS = {"size": _size, "num": _num, "percent": _percent}


class TrainingPages(Controller):
    path = "/rlaas"
    include_in_schema = False

    @get("/training")
    async def training_page(self, state: State, principal: Caller) -> Template:
        app, t = state.flywheel, principal.tenant_id
        exports = (await list_exports(app, t, limit=100)).items
        adapters = (await list_adapters(app.db, t, limit=100)).items
        jobs = await _progress(app, t, [*exports, *adapters])
        return Template("rlaas/training.html", context={
            "exports": exports, "adapters": adapters, "jobs": jobs, **HELPERS})

    @get("/adapters/{adapter_id:uuid}")
    async def adapter_page(self, state: State, principal: Caller, adapter_id: FromPath[UUID]) -> Template:
        app, t = state.flywheel, principal.tenant_id
        adapter = await get_adapter(app.db, t, adapter_id)
        history = (adapter.metrics or {}).get("loss_history") or []
        chart = line_chart({"training loss": [(int(step), float(loss)) for step, loss in history]},
                           title="Training loss", x_label="step", y_label="loss") if history else None
        serving = [p for p in (await policies.list_policies(app.db, t, limit=500)).items
                   if p.upstream.adapter_id == str(adapter.id)]
        jobs = await _progress(app, t, [adapter])
        return Template("rlaas/adapter.html", context={
            "a": adapter, "chart": chart, "serving": serving, "job": jobs.get(adapter.job_id), **HELPERS})

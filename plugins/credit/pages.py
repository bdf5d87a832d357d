"""The credit pages of the web console (the replaced React shell): datasets with their profiles,
feature sets, runs (status, metrics, pass or fail, the report) and models.

They read through the same functions as `/v1/credit`, so a page and the API never disagree.
"""

from __future__ import annotations

import base64
import hashlib
import re
from uuid import UUID

from litestar import Controller, Response, get
from litestar.datastructures import State
from litestar.params import FromPath
from litestar.response import Template

from flywheel.plugins.credit import catalog, datasets, runs
from flywheel.server.plugin_api import Caller, NotFound, tenant_store


def _pct(x) -> str:
    return "" if x is None else f"{x * 100:.1f}%"


def _num(x, digits: int = 4) -> str:
    return "" if x is None else f"{x:.{digits}f}"


HELPERS = {"pct": _pct, "num": _num}
_STYLE = re.compile(rb"<style>(.*?)</style>", re.S)


def report_policy(html: bytes) -> str:
    """The console's policy (no scripts, nothing from elsewhere), except that the report's own
    style block may apply: it is allowed by its hash, so no other inline style can."""
    hashes = " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(m).digest()).decode()}'"
                      for m in _STYLE.findall(html)) or "'none'"
    return (f"default-src 'none'; style-src {hashes}; img-src data:; "
            "form-action 'none'; frame-ancestors 'none'; base-uri 'none'")


class CreditPages(Controller):
    path = "/credit"
    include_in_schema = False

    @get("/")
    async def datasets_page(self, state: State, principal: Caller) -> Template:
        db, t = state.flywheel.db, principal.tenant_id
        items = await datasets.list_datasets(db, t, None, 200)
        latest = {d.id: await datasets.get_version(db, t, d.versions[0].id) for d in items if d.versions}
        return Template("credit/datasets.html", context={"items": items, "latest": latest, **HELPERS})

    @get("/datasets/{dataset_version_id:uuid}")
    async def dataset_page(self, state: State, principal: Caller, dataset_version_id: FromPath[UUID]) -> Template:
        v = await datasets.get_version(state.flywheel.db, principal.tenant_id, dataset_version_id)
        return Template("credit/dataset.html", context={"v": v, **HELPERS})

    @get("/feature-sets")
    async def feature_sets_page(self, state: State, principal: Caller) -> Template:
        items = await catalog.list_feature_sets(state.flywheel.db, principal.tenant_id, None, 200)
        return Template("credit/feature_sets.html", context={"items": items, **HELPERS})

    @get("/runs")
    async def runs_page(self, state: State, principal: Caller) -> Template:
        items = await runs.list_runs(state.flywheel.db, principal.tenant_id, None, 200)
        return Template("credit/runs.html", context={"items": items, **HELPERS})

    @get("/runs/{run_id:uuid}")
    async def run_page(self, state: State, principal: Caller, run_id: FromPath[UUID]) -> Template:
        fw = state.flywheel
        run = await runs.reconciled(fw, principal.tenant_id, await runs.get(fw.db, principal.tenant_id, run_id))
        return Template("credit/run.html", context={"r": run, "m": run.metrics or {}, **HELPERS})

    @get("/runs/{run_id:uuid}/report")
    async def report_page(self, state: State, principal: Caller, run_id: FromPath[UUID]) -> Response[bytes]:
        """The run's report as it is stored: one self-contained HTML file."""
        run = await runs.get(state.flywheel.db, principal.tenant_id, run_id)
        key = run.artifacts.get("report")
        if key is None:
            raise NotFound(f"run {run_id} has no report")
        html = await tenant_store(state.flywheel, principal.tenant_id).get(key)
        return Response(html, media_type="text/html", headers={"Content-Security-Policy": report_policy(html)})

    @get("/models")
    async def models_page(self, state: State, principal: Caller) -> Template:
        items = [r for r in await runs.list_runs(state.flywheel.db, principal.tenant_id, None, 200)
                 if r.model_version is not None]
        return Template("credit/models.html", context={"items": items, **HELPERS})

"""Console pages for models: families, a family's versions, one version, two side by side, activation."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

import structlog
from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.params import QueryParameter
from litestar.response import Redirect, Template

from flywheel.contracts.models import LOWER_IS_BETTER, ModelVersionRead
from flywheel.server.auth.principal import Caller
from flywheel.server.console.api_reads import list_models
from flywheel.server.console.templating import console_session
from flywheel.server.models import registry
from flywheel.server.models.api import Family, Version
from flywheel.server.models.families import family_of
from flywheel.server.store.base import ObjectNotFound

log = structlog.get_logger("flywheel.console")

VersionQuery = Annotated[int | None, QueryParameter(ge=1, le=2**31 - 1)]
IMPORTANCE_SHOWN = 10
# The columns of a family's version table; the family's primary metric is added when it is another one.
VERSION_COLUMNS = (("roc_auc", "ROC-AUC"), ("pr_auc", "PR-AUC"), ("log_loss", "Log loss"), ("brier", "Brier"))
# Metrics where one value is better than another (the positive rate, row counts... just differ).
RANKED = frozenset({"roc_auc", "pr_auc", *LOWER_IS_BETTER})


def scalar_metrics(metrics: dict[str, Any] | None, primary: str) -> list[tuple[str, Any]]:
    """The single-number metrics, the family's primary one first."""
    items = [(k, v) for k, v in (metrics or {}).items() if v is None or isinstance(v, (int, float))]
    return sorted(items, key=lambda kv: (kv[0] != primary, kv[0]))


def calibration_series(version: ModelVersionRead) -> list[tuple[float, float]]:
    """Mean predicted probability against the observed rate, per calibration bin."""
    bins = (version.metrics or {}).get("calibration") or []
    return [(b["mean_predicted"], b["observed_rate"]) for b in bins]


def calibration_chart(versions: dict[str, ModelVersionRead]) -> dict[str, list[tuple[float, float]]]:
    """The calibration lines of some versions, with the diagonal a perfect model would follow
    (empty when no version has a calibration table)."""
    series = {name: calibration_series(v) for name, v in versions.items()}
    series = {name: points for name, points in series.items() if points}
    return {**series, "perfectly calibrated": [(0.0, 0.0), (1.0, 1.0)]} if series else {}


def metric_columns(primary: str) -> list[tuple[str, str]]:
    known = [name for name, _ in VERSION_COLUMNS]
    return list(VERSION_COLUMNS) if primary in known else [(primary, primary), *VERSION_COLUMNS]


def activation_notice(request: Request, active) -> dict[str, int | None]:
    """What the redirect after an activation names, if it is what is active now (a link cannot
    make the page claim an activation that did not happen)."""
    shown = {"activated": None, "previous": None}
    activated, previous = request.query_params.get("activated", ""), request.query_params.get("previous", "")
    if active is not None and activated == str(active["version"]):
        shown["activated"] = active["version"]
        shown["previous"] = int(previous) if previous.isdigit() and len(previous) < 11 else None
    return shown


def family_url(family: str) -> str:
    return f"/console/models/{quote(family, safe='')}"


async def model_card(state: Any, tenant_id, family: str, version: int) -> str | None:
    try:
        raw = await state.tenant_store(tenant_id).get(f"models/{family}/{version}/model_card.md")
    except ObjectNotFound:
        return None  # still training, or failed: no card was written
    return raw.decode("utf-8", "replace")


class ModelPages(Controller):
    path = "/models"

    @get("/", name="console:models")
    async def models(self, state: State, principal: Caller) -> Template:
        families = await list_models(state, principal)
        return Template("console/models.html", context={"families": families.items, "family_url": family_url})

    @get("/{family:str}", name="console:model-family")
    async def family(self, request: Request, state: State, principal: Caller, family: Family) -> Template:
        fw = state.flywheel
        spec = family_of(fw, family)
        versions = await registry.list_versions(fw.db, principal.tenant_id, family)
        active = await registry.active_row(fw.db, principal.tenant_id, family)
        ready = [v.version for v in versions if v.state == "ready"]
        return Template("console/model_family.html", context={
            "family": spec, "name": family, "plugin": fw.contributions.model_families[family][0],
            "versions": versions, "active": active, "ready": ready, "family_url": family_url(family),
            "columns": metric_columns(spec.primary_metric),
            "primary": spec.primary_metric, "lower_is_better": spec.primary_metric in LOWER_IS_BETTER,
            "activations": await registry.activations(fw.db, principal.tenant_id, family, limit=20),
            **activation_notice(request, active),
        })

    @get("/{family:str}/versions/{version:int}", name="console:model-version")
    async def version(self, state: State, principal: Caller, family: Family, version: Version) -> Template:
        fw = state.flywheel
        spec = family_of(fw, family)
        v = await registry.get_version(fw.db, principal.tenant_id, family, version)
        importance = [(f["feature"], f["gain"]) for f in (v.metrics or {}).get("feature_importance", [])]
        return Template("console/model_version.html", context={
            "family": spec, "name": family, "v": v, "family_url": family_url(family),
            "metrics": scalar_metrics(v.metrics, spec.primary_metric),
            "calibration": calibration_chart({"observed": v}), "importance": importance[:IMPORTANCE_SHOWN],
            "card": await model_card(fw, principal.tenant_id, family, version),
        })

    @get("/{family:str}/compare", name="console:model-compare")
    async def compare(self, state: State, principal: Caller, family: Family, a: VersionQuery = None,
                      b: VersionQuery = None) -> Template:
        fw = state.flywheel
        spec = family_of(fw, family)
        versions = await registry.list_versions(fw.db, principal.tenant_id, family)
        numbers = [v.version for v in versions]
        # Without a choice: the active version against the newest other one.
        active = next((v.version for v in versions if v.active), numbers[0] if numbers else None)
        a = a or active
        b = b or next((n for n in numbers if n != a), a)
        left = await registry.get_version(fw.db, principal.tenant_id, family, a) if a else None
        right = await registry.get_version(fw.db, principal.tenant_id, family, b) if b else None
        return Template("console/model_compare.html", context={
            "family": spec, "name": family, "family_url": family_url(family), "numbers": numbers,
            "left": left, "right": right, "rows": compare_rows(left, right, spec.primary_metric),
            "calibration": calibration_chart({f"v{v.version}": v for v in (left, right) if v is not None}),
        })

    @post("/{family:str}/versions/{version:int}/activate", name="console:model-activate", status_code=303,
          opt={"scope": "admin"})
    async def activate(self, request: Request, state: State, principal: Caller, family: Family,
                       version: Version) -> Redirect:
        """Serve `version` from now on, as `POST /v1/models/{family}/versions/{version}/activate` does."""
        fw = state.flywheel
        family_of(fw, family)
        result = await registry.activate(fw.db, principal.tenant_id, family, version,
                                         by=f"key {principal.key_id} (console)")
        session = console_session(request)
        # The registry keeps only the current pointer and its time; this line is the trail of who moved it.
        log.info("model activated", family=family, version=version, previous=result.previous_version,
                 tenant_id=str(principal.tenant_id), key=session.key_prefix if session else None, via="console")
        previous = "" if result.previous_version is None else f"&previous={result.previous_version}"
        return Redirect(f"{family_url(family)}?activated={version}{previous}", status_code=303)


def compare_rows(left: ModelVersionRead | None, right: ModelVersionRead | None,
                 primary: str) -> list[dict[str, Any]]:
    """One row per scalar metric of either version: both values and which is better."""
    a = dict(scalar_metrics(left.metrics if left else None, primary))
    b = dict(scalar_metrics(right.metrics if right else None, primary))
    names = sorted(set(a) | set(b), key=lambda k: (k != primary, k))
    rows = []
    for name in names:
        x, y = a.get(name), b.get(name)
        better = None
        if isinstance(x, (int, float)) and isinstance(y, (int, float)) and x != y and name in {*RANKED, primary}:
            better = "left" if (x < y) == (name in LOWER_IS_BETTER) else "right"
        rows.append({"name": name, "left": x, "right": y, "better": better,
                     "delta": y - x if isinstance(x, (int, float)) and isinstance(y, (int, float)) else None})
    return rows

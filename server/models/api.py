"""`/v1/models`: families and versions, training, activation, scoring."""

from __future__ import annotations

import time
from typing import Annotated

import msgspec
from litestar import Controller, Request, Response, get, post, put
from litestar.datastructures import State
from litestar.exceptions import ValidationException
from litestar.params import JSONBody, PathParameter, QueryParameter

from flywheel.contracts.jobs import JobRead
from flywheel.contracts.models import (
    TRAINING_PARAMS,
    ActivateResult,
    BatchScoreResult,
    DynamicFeatures,
    FamilyList,
    FamilyRead,
    FeatureInfo,
    ModelInfo,
    ModelVersionRead,
    ScoreResult,
    TableScoreRequest,
    TrainModel,
    TrainRequest,
)
from flywheel.server.auth.principal import Caller
from flywheel.server.errors import ApiError, InvalidInput, NotFound, unknown_field, validation_body
from flywheel.server.hooks import call_hook
from flywheel.server.jobs.queue import enqueue
from flywheel.server.jobs.status import job_status
from flywheel.server.models import registry
from flywheel.server.models.batch_scoring import queue_batch_score
from flywheel.server.models.families import family_of
from flywheel.server.models.features import feature_spec
from flywheel.server.models.metrics import SCORE_SECONDS, SCORED_ROWS
from flywheel.server.models.runtime import MAX_EXPLAIN_ROWS
from flywheel.server.models.training import check_monotone
from flywheel.server.monitoring import api as monitoring_api
from flywheel.server.monitoring.contracts import (
    BackfillRequest,
    MonitoringReport,
    ThresholdsRead,
    ThresholdsUpdate,
)
from flywheel.server.monitoring.thresholds import set_overrides, thresholds_read

Explain = Annotated[int, QueryParameter(ge=0, le=1000, description="Return the top N feature contributions per row")]
# Version numbers are Postgres integers: larger ones cannot name anything.
Version = Annotated[int, PathParameter(ge=1, le=2**31 - 1)]
Family = Annotated[str, PathParameter(min_length=1, max_length=200)]
# Dates parsed by monitoring (not Litestar), so an error names `query.from`, not the Python argument.
Day = Annotated[str | None, QueryParameter(name="from", format="date", max_length=10,
                                           description="First day (ISO date, UTC)")]
DayTo = Annotated[str | None, QueryParameter(name="to", format="date", max_length=10,
                                             description="Last day (ISO date, UTC)")]
VersionQuery = Annotated[int | None, QueryParameter(ge=1, le=2**31 - 1, description="Only this version")]
MSGPACK = ("application/msgpack", "application/x-msgpack", "application/vnd.msgpack")
def invalid_train_request(request: Request, exc: ValidationException) -> Response:
    """Body errors as for any route (422, the field at fault: `$.params.tree_learner`), and a
    parameter a request may not set is answered with the list of those it may."""
    body = validation_body(exc)
    unknown = unknown_field(body.message)
    if unknown and body.field == f"$.params.{unknown}":
        body = msgspec.structs.replace(body, message=(
            f"{unknown!r} is not a training parameter a request may set; accepted "
            f"(LightGBM's names, no other aliases): {', '.join(TRAINING_PARAMS)}"))
    return Response(content=body, status_code=body.status)


# Scoring decodes its body into the family's numeric Struct and refuses undecodable ones itself
# (models/features.py): the input guard's scans would cost 5-15% of its throughput for nothing.
SCORING = {"scope": "read", "own_body_checks": True}


class ModelController(Controller):
    path = "/v1/models"
    tags = ["models"]

    @get("/", operation_id="listModels")
    async def list_models(self, state: State, principal: Caller) -> FamilyList:
        """Every model family the plugins declare, with this tenant's versions (newest first)."""
        fw = state.flywheel
        versions = await registry.list_versions(fw.db, principal.tenant_id)
        items = []
        for name, (plugin, family) in sorted(fw.contributions.model_families.items()):
            mine = [v for v in versions if v.family == name]
            active = next((v.version for v in mine if v.active), None)
            items.append(FamilyRead(name=name, plugin=plugin, description=family.description,
                                    primary_metric=family.primary_metric,
                                    features=feature_spec(family.features).describe(),
                                    active_version=active, versions=mine))
        served = await call_hook(fw.pm, "list_served_models", isolate=True, state=fw, tenant_id=principal.tenant_id)
        return FamilyList(items=items, data=[model for _, models in served for model in models])

    @get("/{family:str}", operation_id="getActiveModel")
    async def get_active_model(self, state: State, principal: Caller, family: Family) -> ModelInfo:
        """The active version of a family: its features, metrics, provenance and model card."""
        fw = state.flywheel
        family_of(fw, family)
        row = await registry.active_row(fw.db, principal.tenant_id, family)
        if row is None:
            raise NotFound(f"no active version of model {family!r}")
        store = fw.tenant_store(principal.tenant_id)
        card = (await store.get(f"models/{family}/{row['version']}/model_card.md")).decode()
        features = msgspec.convert(row["features"], list[FeatureInfo])
        return ModelInfo(family=family, version=row["version"], features=features,
                         metrics=row["metrics"], created_at=row["created_at"], activated_at=row["activated_at"],
                         info=row["info"], card=card)

    @get("/{family:str}/versions/{version:int}", operation_id="getModelVersion")
    async def get_model_version(self, state: State, principal: Caller, family: Family,
                                version: Version) -> ModelVersionRead:
        """One version of a family: its state (training, ready, failed), metrics and training job."""
        return await registry.get_version(state.flywheel.db, principal.tenant_id, family, version)

    @post("/{family:str}/train", operation_id="trainModel", status_code=202, opt={"scope": "write"},
          exception_handlers={ValidationException: invalid_train_request})
    async def train_model(self, state: State, principal: Caller, family: Family,
                          data: JSONBody[TrainRequest]) -> JobRead:
        """Queue a training job for a new version; follow it at `/v1/jobs/{id}`.

        `params` takes the LightGBM parameters `TrainingParams` lists, nothing
        else; errors (422) name the field, e.g. `$.params.tree_learner`.
        """
        fw = state.flywheel
        declared = family_of(fw, family).features
        if declared is not DynamicFeatures:  # else the features, and so the names, come with the data
            check_monotone(feature_spec(declared), data.monotone)
        payload = TrainModel(family=family, **msgspec.structs.asdict(data))
        job_id = await enqueue(fw, "core.train_model", payload, tenant_id=principal.tenant_id)
        return await job_status(fw.db, job_id, principal.tenant_id)

    @post("/{family:str}/versions/{version:int}/activate", operation_id="activateModel", status_code=200,
          opt={"scope": "admin"})
    async def activate_model(self, state: State, principal: Caller, family: Family,
                             version: Version) -> ActivateResult:
        """Serve `version` from now on, on every replica (within a second, without failed requests).

        No body: the family and version are in the path. Only a `ready` version can be activated
        (409 `model_not_ready` otherwise); the answer names the version it replaces (`previous_version`),
        which stays in the registry to activate again.
        """
        family_of(state.flywheel, family)
        return await registry.activate(state.flywheel.db, principal.tenant_id, family, version,
                                       by=f"key {principal.key_id}")

    @get("/{family:str}/activations", operation_id="listModelActivations")
    async def list_activations(self, state: State, principal: Caller, family: Family,
                               limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50) -> list[ActivateResult]:
        """Who activated which version when, newest first (by hand, from the CLI, or after training)."""
        family_of(state.flywheel, family)
        return await registry.activations(state.flywheel.db, principal.tenant_id, family, limit)

    @get("/{family:str}/monitoring", operation_id="getModelMonitoring")
    async def get_monitoring(self, state: State, principal: Caller, family: Family, from_day: Day = None,
                             to_day: DayTo = None, version: VersionQuery = None) -> MonitoringReport:
        """Each version's daily monitoring figures from `from` to `to` (default: the last 30 days, at most 366).

        Per day: PSI of every feature and of the score against the version's training distribution,
        missing shares then and now, calibration by score band once labels are known, operational
        figures (rows, latency percentiles, errors), the volume against the trailing days, and the
        thresholds crossed (`breaches`, each raised as an alert by the daily job).
        """
        return await monitoring_api.report(state.flywheel, principal.tenant_id, family, from_day, to_day, version)

    @get("/{family:str}/monitoring/thresholds", operation_id="getMonitoringThresholds")
    async def get_thresholds(self, state: State, principal: Caller, family: Family) -> ThresholdsRead:
        """The family's monitoring thresholds: its defaults, this tenant's overrides, and the effective ones."""
        family_of(state.flywheel, family)
        return await thresholds_read(state.flywheel, principal.tenant_id, family)

    @put("/{family:str}/monitoring/thresholds", operation_id="setMonitoringThresholds", opt={"scope": "admin"})
    async def set_thresholds(self, state: State, principal: Caller, family: Family,
                             data: JSONBody[ThresholdsUpdate]) -> ThresholdsRead:
        """Replace this tenant's overrides (fields left out take the family's defaults; `{}` clears them).

        A warning level above its alert level is refused (422 naming the field).
        """
        family_of(state.flywheel, family)
        return await set_overrides(state.flywheel, principal.tenant_id, family, data, by=f"key {principal.key_id}")

    @post("/{family:str}/monitoring/backfill", operation_id="backfillModelMonitoring", status_code=202,
          opt={"scope": "write"})
    async def backfill_monitoring(self, state: State, principal: Caller, family: Family,
                                  data: JSONBody[BackfillRequest]) -> JobRead:
        """Recompute the monitoring figures of every day from `from` to `to` (at most 366 days) in a job.

        Raises no alerts (history is not news). Days scored before a version's training distribution
        existed, or with no rows, get operational figures only.
        """
        return await monitoring_api.backfill(state.flywheel, principal.tenant_id, family, data)

    @post("/{family:str}/batch_score", operation_id="batchScoreTable", status_code=202, opt={"scope": "write"})
    async def batch_score(self, state: State, principal: Caller, family: Family,
                          data: JSONBody[TableScoreRequest]) -> JobRead:
        """Score every Parquet file under `input_prefix` (this tenant's store) in jobs, one per file.

        Follow it at `/v1/jobs/{id}` (progress: partitions scored). Scores go, file by file, to
        `batch_scores/{output_prefix}` (default `batch_scores/{family}/v{version}/{input_prefix}`) with the
        `keep_columns`, `score` and `margin`; each is written once, so a re-run skips what is done.
        404 on `$.input_prefix` when no Parquet file is there.
        """
        return await queue_batch_score(state.flywheel, principal.tenant_id, family, data)

    @post("/{family:str}/score", operation_id="score", status_code=200, opt={**SCORING, "openapi_body": "score_row"})
    async def score(self, request: Request, state: State, principal: Caller, family: Family,
                    explain: Explain = 0) -> ScoreResult:
        """Score one row: a JSON object of named features (see the family's `features`).

        `score` is P(label = 1) in float64, the sigmoid of `margin` (log-odds,
        what to rank on). Missing, unknown and mistyped features are all named in one 422. With
        `explain=N`, the N largest feature contributions (log-odds) come back.
        """
        started = time.perf_counter()
        runtime = state.flywheel.models
        model = await runtime.active(principal.tenant_id, family)
        try:
            X = model.spec.decode_one(await request.body())
            p, m = model.score_one(X)
            result = ScoreResult(family=family, version=model.version, score=p, margin=m)
            if explain:
                result.explanation = (await model.explain(X, explain))[0]
        except Exception as exc:  # counted per version for monitoring: refused rows, or our failure
            runtime.monitor.failed(model, "score", client=isinstance(exc, ApiError) and exc.status < 500)
            raise
        seconds = time.perf_counter() - started
        SCORE_SECONDS.labels(family, str(model.version), "score").observe(seconds)
        runtime.monitor.scored_one(model, X, m, seconds)
        return result

    @post("/{family:str}/score_batch", operation_id="scoreBatch", status_code=200,
          opt={**SCORING, "openapi_body": "score_batch", "errors": {415: "a Content-Type other than JSON or msgpack"}})
    async def score_batch(self, request: Request, state: State, principal: Caller, family: Family,
                          explain: Explain = 0) -> BatchScoreResult:
        """Score many rows at once.

        The body is `{"rows": [{...}, ...]}` as JSON or msgpack (`Content-Type: application/msgpack`),
        at most 10,000 rows (1,000 with `explain`). `scores[i]` and `margins[i]` are row i's. Errors
        name the row and feature (`$.rows[3].age`).
        """
        started = time.perf_counter()
        runtime = state.flywheel.models
        model = await runtime.active(principal.tenant_id, family)
        try:
            X, scores, margins, result = await _score_rows(request, model, family, explain)
        except Exception as exc:  # counted per version for monitoring: refused rows, or our failure
            runtime.monitor.failed(model, "score_batch", client=isinstance(exc, ApiError) and exc.status < 500)
            raise
        seconds = time.perf_counter() - started
        SCORE_SECONDS.labels(family, str(model.version), "score_batch").observe(seconds)
        SCORED_ROWS.labels(family, "score_batch").observe(len(scores))
        runtime.monitor.scored_many(model, "score_batch", X, margins, seconds)
        return result


async def _score_rows(request: Request, model, family: str, explain: int):
    """A batch request's rows decoded and scored: (matrix, scores, margins, the answer)."""
    content_type = (request.headers.get("content-type") or "application/json").split(";")[0].strip().lower()
    if content_type not in ("application/json", *MSGPACK):
        raise ApiError(f"unsupported content type {content_type!r}; send application/json or "
                       "application/msgpack", status=415, code="unsupported_media_type")
    X = model.spec.decode_batch(await request.body(), msgpack=content_type in MSGPACK)
    if explain and len(X) > MAX_EXPLAIN_ROWS:
        raise InvalidInput(
            f"explain works on at most {MAX_EXPLAIN_ROWS} rows per request, got {len(X)}: "
            f"send the rows to explain in several requests of up to {MAX_EXPLAIN_ROWS} each "
            "(scoring without explain takes them all at once)",
            field="query.explain", code="too_many_rows")
    scores, margins = model.scores(X)
    result = BatchScoreResult(family=family, version=model.version, scores=scores.tolist(),
                              margins=margins.tolist())
    if explain:
        result.explanations = await model.explain(X, explain)
    return X, scores, margins, result

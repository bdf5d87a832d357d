"""Serving models: ONNX Runtime sessions per version, the active pointer, and hot swaps.

- A version's session is built once (in a thread: building takes milliseconds
  to seconds) and kept in a small LRU; every request for that version reuses it.
- The active version per (tenant, family) is cached. Activation sends
  `NOTIFY flywheel_models`; each replica's listener loads the new version
  *first* and only then moves the pointer, so requests never wait on a load
  and never fail during a swap (those in flight finish on the old session).
- While the listener is not connected (startup, a database restart), the
  pointer is not trusted: each request reads it from Postgres, so a replica
  never serves a stale version for longer than its listener is down.
- Explanations use LightGBM's `pred_contrib` on the version's text model,
  loaded on first use: SHAP-style contributions that sum to the raw margin.
  They cost about a millisecond a row per thousand trees, so they run on a
  small pool of their own (one LightGBM thread each, like the ONNX sessions)
  and never on the event loop; the API explains at most MAX_EXPLAIN_ROWS
  rows per request.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from uuid import UUID

import asyncpg
import msgspec
import numpy as np
import pyarrow as pa
import structlog

from flywheel.contracts.models import Contribution, DynamicFeatures, Explanation, ModelFamily
from flywheel.server.errors import NotFound
from flywheel.server.models import registry
from flywheel.server.models.features import FeatureSpec, feature_spec
from flywheel.server.models.onnx import OnnxClassifier
from flywheel.server.monitoring.recorder import ScoringMonitor
from flywheel.server.monitoring.reference import load_reference

if TYPE_CHECKING:
    from flywheel.server.state import AppState

log = structlog.get_logger("flywheel.models")
CACHED_VERSIONS = 32
RECONNECT_S = 1.0
# Rows one API request may have explained: about a second of one core for 1,000 trees of 15
# leaves (the cost grows with trees x leaves x depth).
MAX_EXPLAIN_ROWS = 1000
# Explanations queue here rather than on the default executor (model loads, other threads), and
# leave a core to the event loop: each uses one LightGBM thread, because OpenMP's spinning pool
# would otherwise take every core for the length of a request.
_EXPLAIN_POOL = ThreadPoolExecutor(max_workers=max(1, (os.cpu_count() or 1) - 1),
                                   thread_name_prefix="flywheel-explain")


@dataclass
class LoadedModel:
    tenant_id: UUID
    family: str
    version: int
    spec: FeatureSpec
    classifier: OnnxClassifier
    _store: Any = field(repr=False, default=None)
    _booster: Any = field(repr=False, default=None)
    # The version's monitoring bins (None: trained before monitoring), and its key in the counts.
    layout: Any = field(repr=False, default=None)
    monitor_key: tuple = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.monitor_key = (self.tenant_id, self.family, self.version)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.classifier.predict(X)

    def scores(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(float64 probabilities, margins): the probability is the margin's sigmoid, never a float32 one."""
        return self.classifier.scores(X)

    def score_one(self, X: np.ndarray) -> tuple[float, float]:
        """(probability, margin) of a one-row matrix."""
        return self.classifier.score_one(X)

    async def explain(self, X: np.ndarray, top: int) -> list[Explanation]:
        """The `top` largest contributions of every row of X, computed off the event loop."""
        booster = await self._load_booster()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(_EXPLAIN_POOL, _explain, booster, self.spec, X, top)

    async def _load_booster(self):
        if self._booster is None:
            import lightgbm as lgb

            text = await self._store.get(f"models/{self.family}/{self.version}/model.txt")
            self._booster = await asyncio.to_thread(lambda: lgb.Booster(model_str=text.decode()))
        return self._booster


def _explain(booster, spec: FeatureSpec, X: np.ndarray, top: int) -> list[Explanation]:
    # Building the Structs is per-row Python (~10 us a row): it belongs in the thread too.
    contrib = booster.predict(X.astype(np.float64), pred_contrib=True, num_threads=1)
    return explanations(spec.names, X, contrib, top, spec)


def explanations(names: tuple[str, ...], X: np.ndarray, contrib: np.ndarray, top: int,
                 spec: FeatureSpec | None = None) -> list[Explanation]:
    out = []
    n = len(names)
    categorical = [spec is not None and k == "category" for k in (spec.kinds if spec else ())] or [False] * n
    for row, c in zip(X, contrib):
        feature_part = c[:n]
        order = np.argsort(-np.abs(feature_part), kind="stable")[:top]
        out.append(Explanation(
            bias=float(c[n]), margin=float(c.sum()),
            top=[Contribution(feature=names[j], value=None if np.isnan(row[j]) else float(row[j]),
                              contribution=float(feature_part[j]),
                              category=spec.category_of(j, row[j]) if categorical[j] else None) for j in order]))
    return out


def version_spec(fam: ModelFamily, stored: list[dict], version: int) -> FeatureSpec:
    """The features a version is served with: its own stored schema (categories and all) for
    DynamicFeatures families, else the family's Struct, which must still match it."""
    if fam.features is DynamicFeatures:
        return FeatureSpec.from_json(stored)
    spec = feature_spec(fam.features)
    if [f["name"] for f in stored] != list(spec.names):
        # The plugin's feature Struct changed since this version was trained.
        raise NotFound(f"version {version} of {fam.name!r} was trained on other features than the plugin "
                       "declares now; train a new version", code="model_features_changed")
    if "category" in spec.kinds:  # the Struct's decoder, the version's category codes
        return dataclasses.replace(spec, categories=FeatureSpec.from_json(stored).categories)
    return spec


class ModelRuntime:
    def __init__(self, state: AppState) -> None:
        self.state = state
        self._loaded: collections.OrderedDict[tuple, LoadedModel] = collections.OrderedDict()
        self._loading: dict[tuple, asyncio.Future] = {}
        self._active: dict[tuple[UUID, str], int] = {}
        self._wanted: dict[tuple[UUID, str], int] = {}  # the latest notified version: swaps finish out of order
        self._listening = False
        self._task: asyncio.Task | None = None
        self._conn: asyncpg.Connection | None = None
        self.swaps = 0  # activations applied from notifications (tests and metrics read it)
        self.monitor = ScoringMonitor(state)  # what scoring counts for monitoring (server/monitoring)

    @property
    def listening(self) -> bool:
        """Whether activations reach this process by NOTIFY (else it reads the pointer per request)."""
        return self._listening

    def active_in_memory(self, tenant_id: UUID, family: str) -> int | None:
        """The version this process serves for (tenant, family) without asking Postgres, if known."""
        return self._active.get((tenant_id, family))

    # -- the active pointer --------------------------------------------------------

    async def active(self, tenant_id: UUID, family: str) -> LoadedModel:
        """The active version of `family` for this tenant, loaded. NotFound if none is active."""
        key = (tenant_id, family)
        version = self._active.get(key) if self._listening else None
        if version is None:
            notified = self._wanted.get(key)
            version = await registry.active_version(self.state.db, tenant_id, family)
            if version is None:
                raise NotFound(f"no active version of model {family!r}; train one and activate it")
            # An activation notified while the read was on the wire may be newer than what it
            # read: caching the read would then serve the old version until the next activation.
            if self._listening and self._wanted.get(key) == notified:
                self._active[key] = version
        return await self.load(tenant_id, family, version)

    async def load(self, tenant_id: UUID, family: str, version: int) -> LoadedModel:
        key = (tenant_id, family, version)
        model = self._loaded.get(key)
        if model is not None:
            self._loaded.move_to_end(key)
            return model
        pending = self._loading.get(key)
        if pending is None:  # one load per version, however many requests wait for it
            pending = self._loading[key] = asyncio.ensure_future(self._load(tenant_id, family, version))
            pending.add_done_callback(lambda _: self._loading.pop(key, None))
        return await asyncio.shield(pending)

    async def _load(self, tenant_id: UUID, family: str, version: int) -> LoadedModel:
        from flywheel.server.models.families import family_of

        fam = family_of(self.state, family)
        stored = await self.state.db.fetchval(
            "SELECT features FROM model_versions WHERE tenant_id = $1 AND family = $2 AND version = $3 "
            "AND state = 'ready'", tenant_id, family, version)
        if stored is None:
            raise NotFound(f"no ready version {version} of model {family!r}")
        spec = version_spec(fam, stored, version)
        store = self.state.tenant_store(tenant_id)
        onnx_bytes = await store.get(f"models/{family}/{version}/model.onnx")
        classifier = await asyncio.to_thread(OnnxClassifier, onnx_bytes)
        reference = await load_reference(self.state.db, tenant_id, family, version)
        model = LoadedModel(tenant_id, family, version, spec, classifier, _store=store,
                            layout=reference.layout if reference is not None else None)
        key = (tenant_id, family, version)
        self._loaded[key] = model
        while len(self._loaded) > CACHED_VERSIONS:
            self._loaded.popitem(last=False)
        log.info("model loaded", family=family, version=version, tenant=str(tenant_id))
        return model

    # -- notifications -------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._listen_forever())
        self.monitor.start()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self.monitor.stop()
        if self._conn is not None and not self._conn.is_closed():
            await self._conn.close(timeout=2)
        self._listening = False

    async def _listen_forever(self) -> None:
        while True:
            lost = asyncio.Event()
            try:
                self._conn = await asyncpg.connect(self.state.settings.database_url)
                self._conn.add_termination_listener(lambda _, lost=lost: lost.set())
                await self._conn.add_listener(registry.CHANNEL, self._on_notify)
                self._listening = True
                await lost.wait()
            except Exception as exc:
                log.warning("model listener cannot connect; reading the active pointer per request",
                            error=type(exc).__name__)
            finally:
                # Deaf from here on: nothing is cached until we listen again (active()
                # caches only while listening), so what changed meanwhile is read afresh.
                self._listening = False
                self._active.clear()
            await asyncio.sleep(RECONNECT_S)

    def _on_notify(self, conn, pid, channel, payload: str) -> None:
        message = msgspec.json.decode(payload)
        key = (UUID(message["tenant_id"]), message["family"])
        self._wanted[key] = int(message["version"])
        asyncio.get_running_loop().create_task(self._swap(*key, int(message["version"])))

    async def _swap(self, tenant_id: UUID, family: str, version: int) -> None:
        try:
            await self.load(tenant_id, family, version)  # load first: requests keep the old one meanwhile
        except Exception:
            log.exception("could not load an activated model; serving reads the pointer per request",
                          family=family, version=version)
            self._active.pop((tenant_id, family), None)
            return
        if self._wanted.get((tenant_id, family)) != version:
            return  # a later activation arrived while this one loaded
        self._active[(tenant_id, family)] = version
        self.swaps += 1
        log.info("model activated", family=family, version=version, tenant=str(tenant_id))


async def score_table(state: AppState, tenant_id: UUID, family: str, table: pa.Table, *, version: int | None = None,
                      chunk_rows: int = 50_000, progress=None, margin: bool = False,
                      monitor: bool = True) -> tuple[int, np.ndarray]:
    """Score an Arrow table (feature columns by name) with the active version, in chunks.

    For plugins' batch jobs: the same sessions and feature order as the HTTP
    endpoints. `version` scores with that ready version instead of the active
    one. Returns (version, float64 probabilities), or with `margin=True` the
    margins (log-odds: rank on these, probabilities of rare events tie near 0).
    `progress(done, total)` is awaited after each chunk when given. `monitor=False`: not
    counted for monitoring (an evaluation or a backtest is not traffic the version served).
    """
    model = await _model(state, tenant_id, family, version)
    out = np.empty(table.num_rows, dtype=np.float64)
    counts, score_sum, started = None, 0.0, time.perf_counter()
    try:
        for start in range(0, table.num_rows, chunk_rows):
            X = model.spec.table_matrix(table.slice(start, chunk_rows))
            values, chunk_counts, chunk_sum = await asyncio.to_thread(_score_chunk, model, X, margin, monitor)
            out[start:start + len(X)] = values
            if chunk_counts is not None:
                counts = chunk_counts if counts is None else counts + chunk_counts
                score_sum += chunk_sum
            if progress is not None:
                await progress(start + len(X), table.num_rows)
    except Exception:
        if monitor:
            state.models.monitor.failed(model, "score_table", client=False)
        raise
    if monitor:
        state.models.monitor.counted(model, "score_table", counts, table.num_rows, score_sum,
                                     time.perf_counter() - started)
        # A worker has no periodic flush: its batch job's counts are written now. An API process
        # writes them within FLUSH_S, so a plugin route that scores per request (credit's /score)
        # costs no Postgres transaction each time.
        if not state.models.monitor.flushing:
            await state.models.monitor.flush()
    return model.version, out


def _score_chunk(model: LoadedModel, X: np.ndarray, margin: bool,
                 monitor: bool = True) -> tuple[np.ndarray, np.ndarray | None, float]:
    """A chunk's scores (margins or probabilities), and its monitoring counts, off the event loop."""
    from scipy.special import expit, logit

    values = model.classifier.margin(X) if margin else model.predict(X)
    if model.layout is None or not monitor:
        return values, None, 0.0
    margins, p = (values, expit(values)) if margin else (logit(values), values)
    return values, model.layout.count(X, margins), float(p.sum())


async def explain_table(state: AppState, tenant_id: UUID, family: str, table: pa.Table, *, version: int | None = None,
                        top: int = 3) -> list[Explanation]:
    """Each row's `top` largest feature contributions (log-odds), off the event loop.

    About 2 ms a row on a few hundred trees: explain the rows people look at
    (the riskiest), not a whole table. `version`: as for `score_table`.
    """
    model = await _model(state, tenant_id, family, version)
    return await model.explain(model.spec.table_matrix(table), top)


async def _model(state: AppState, tenant_id: UUID, family: str, version: int | None) -> LoadedModel:
    if version is None:
        return await state.models.active(tenant_id, family)
    return await state.models.load(tenant_id, family, version)

"""AppState: the connections and registries one Flywheel process shares.

The API, the worker and `flywheel up` (both in one process) all build one
AppState. Handlers get it as the `state` dependency; jobs get it on their
context; plugins get it in `on_startup`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import asyncpg
import structlog
from arq import create_pool
from arq.connections import ArqRedis, RedisSettings

from flywheel.server.auth.service import KeyCache
from flywheel.server.contributions import Contributions
from flywheel.server.db.migrations import CORE_SOURCE, migrate
from flywheel.server.db.pool import create_pool as create_db_pool
from flywheel.server.hooks import call_hook
from flywheel.server.jobs.serializer import job_deserializer, job_serializer
from flywheel.server.plugin_manager import FlywheelPluginManager
from flywheel.server.settings import Settings

if TYPE_CHECKING:
    from flywheel.server.ingest.archive import JsonlArchiver
    from flywheel.server.ingest.service import Ingestor
    from flywheel.server.ingest.subscribers import Subscribers
    from flywheel.server.models.runtime import ModelRuntime
    from flywheel.server.secrets import SecretBox
    from flywheel.server.store import ObjectStore

log = structlog.get_logger("flywheel.state")


@dataclass
class AppState:
    settings: Settings
    pm: FlywheelPluginManager
    contributions: Contributions
    db: asyncpg.Pool | None = None
    redis: ArqRedis | None = None
    store: ObjectStore | None = None
    # Plugins' own objects, keyed by plugin name ("drives.demo"); the core keeps none here.
    extras: dict[str, Any] = field(default_factory=dict)
    keys: KeyCache = field(default_factory=KeyCache)  # API key lookups, shared by auth and the ingest fast path
    ingestor: Ingestor | None = None  # the ingestion engine, in processes that serve the API
    subscribers: Subscribers | None = None  # on_events_committed dispatch (API processes)
    archiver: JsonlArchiver | None = None  # the JSONL event archive (API processes, when enabled)
    models: ModelRuntime | None = None  # ONNX sessions and active versions (server/models/runtime.py)
    secret_box: SecretBox | None = None  # sealing plugins' secrets (server/secrets.py), built on first use
    started: bool = False
    plugins_started: bool = False  # on_startup ran (and on_shutdown is due)

    @property
    def migration_sources(self) -> list:
        return [CORE_SOURCE] + [source for _, source in self.contributions.migrations]

    async def start(self, *, run_migrations: bool = True, start_plugins: bool = True) -> None:
        """Connect to Postgres, Redis and the store, migrate, then tell plugins.

        `start_plugins=False` (`flywheel migrate`): no `on_startup`, since plugins may read
        tables that the pending migrations have yet to create; no `on_shutdown` either.
        """
        s = self.settings
        if not s.database_url or not s.redis_url:
            raise RuntimeError("DATABASE_URL and REDIS_URL must be set (flywheel up starts embedded ones)")
        self.db = await create_db_pool(s.database_url, size=s.db_pool_size)
        if run_migrations:
            async with self.db.acquire() as conn:
                await migrate(conn, self.migration_sources)
        self.redis = await create_pool(
            RedisSettings.from_dsn(s.redis_url), default_queue_name=s.queue_name,
            job_serializer=job_serializer, job_deserializer=job_deserializer,
        )
        from flywheel.server.store import open_store  # lazy: the S3 client is slow to import

        self.store = open_store(self.store_url, endpoint_url=s.s3_endpoint_url, region=s.s3_region)
        from flywheel.server.models.runtime import ModelRuntime

        self.models = ModelRuntime(self)
        self.started = True
        if start_plugins:
            self.plugins_started = True
            await call_hook(self.pm, "on_startup", trace_calls=s.trace_hooks, state=self)

    @property
    def store_url(self) -> str:
        return self.settings.store_url or f"file://{self.settings.data_path / 'store'}"

    async def start_ingest(self) -> None:
        """Start the ingestion engine and what follows each commit (API processes only)."""
        from flywheel.server.ingest.archive import JsonlArchiver
        from flywheel.server.ingest.service import Ingestor
        from flywheel.server.ingest.subscribers import Subscribers

        ingestor = Ingestor(self)
        subscribers = Subscribers(self, ingestor.event_types)
        ingestor.engine.listeners.append(subscribers.offer)
        if self.settings.archive_jsonl:
            archiver = JsonlArchiver(self)
            ingestor.engine.listeners.append(archiver.offer)
            archiver.start()
            self.archiver = archiver
        subscribers.start()
        self.subscribers = subscribers
        await ingestor.start()
        self.ingestor = ingestor

    async def start_serving(self) -> None:
        """What an API process runs besides the app: the ingestion engine and model swaps."""
        await self.start_ingest()
        self.models.start()

    async def stop_serving(self) -> None:
        if self.models is not None:
            await self.models.stop()
        await self.stop_ingest()

    async def stop_ingest(self) -> None:
        if self.ingestor is None:
            return
        await self.ingestor.stop()  # flushes what was accepted first
        for helper in (self.subscribers, self.archiver):
            if helper is not None:
                await helper.stop()
        self.subscribers = self.archiver = None
        self.ingestor = None

    async def stop(self) -> None:
        if not self.started:
            return
        # Plugins stop first, while the ingestion engine still takes what they flush (records
        # kept in memory); then the engine stores everything accepted.
        if self.plugins_started:
            await call_hook(self.pm, "on_shutdown", isolate=True, trace_calls=self.settings.trace_hooks,
                            state=self)
            self.plugins_started = False
        await self.stop_serving()
        from flywheel.server.sandbox.factory import close_cached  # after the plugins: their jobs may still run one

        await close_cached(self)
        if self.store is not None:
            await self.store.close()
        if self.redis is not None:
            await self.redis.aclose()
        if self.db is not None:
            await self.db.close()
        self.started = False

    def secrets(self) -> SecretBox:
        if self.secret_box is None:
            from flywheel.server.secrets import secret_box

            self.secret_box = secret_box(self.settings)
        return self.secret_box

    def tenant_store(self, tenant_id: Any) -> ObjectStore:
        """The object store as one tenant sees it: every key under its own prefix."""
        assert self.store is not None
        return self.store.for_prefix(f"tenants/{tenant_id}/")

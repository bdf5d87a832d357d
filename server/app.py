"""The app factory: one Litestar app per call, with its own plugin manager."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterable
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar, Router
from litestar.config.compression import CompressionConfig
from litestar.di import Provide
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from litestar.plugins.prometheus import PrometheusConfig

from flywheel.server import __version__
from flywheel.server.alerts.routes import ALERT_ROUTES
from flywheel.server.api.docs_assets import docs_assets_router, render_plugins
from flywheel.server.api.health import healthz, metrics, readyz
from flywheel.server.api.jobs import JobController
from flywheel.server.api.keys import TenantController
from flywheel.server.api.plugins import list_plugins
from flywheel.server.auth.middleware import ApiKeyAuthentication, provide_principal, scope_guard
from flywheel.server.console import console_router, console_templates, with_html_errors
from flywheel.server.contributions import collect
from flywheel.server.cors import cors_config
from flywheel.server.errors import EXCEPTION_HANDLERS
from flywheel.server.fast_routes import FastRoutes, fast_routes_of
from flywheel.server.gc_tuning import tune_for_serving
from flywheel.server.hosts import HostCheck
from flywheel.server.idempotency import idempotency_middleware
from flywheel.server.ingest.api import EventController, PiiController
from flywheel.server.ingest.fastpath import IngestFastPath
from flywheel.server.input_guard import input_guard
from flywheel.server.jobs.core_jobs import CORE_CRONS, CORE_JOBS
from flywheel.server.models.api import ModelController
from flywheel.server.openapi import document_api
from flywheel.server.plugin_manager import FlywheelPluginManager, create_plugin_manager
from flywheel.server.settings import Settings
from flywheel.server.state import AppState
from flywheel.server.telemetry import request_tracing_middleware, tracing_enabled

CORE_ROUTES = [healthz, readyz, metrics, list_plugins, TenantController, JobController, EventController,
               PiiController, ModelController, *ALERT_ROUTES]
CORE_COMMANDS = {"up", "serve", "worker", "migrate", "plugins", "tenants", "keys", "openapi", "schemas", "events",
                 "jobs", "models", "backup", "restore"}


def build_state(settings: Settings, plugins: Iterable[Any] = (), *, load_entrypoints: bool = False,
                pm: FlywheelPluginManager | None = None) -> AppState:
    """Load plugins and collect what they contribute (no connections yet)."""
    pm = pm or create_plugin_manager(plugins, load_entrypoints=load_entrypoints, allow=settings.plugins)
    contributions = collect(pm, core_routes=CORE_ROUTES, core_jobs=CORE_JOBS, reserved_commands=CORE_COMMANDS)
    for spec in CORE_CRONS:
        contributions.cron_jobs[spec.name] = ("core", spec)
    state = AppState(settings=settings, pm=pm, contributions=contributions)
    return state


def create_app(settings: Settings, plugins: Iterable[Any] = (), *, load_entrypoints: bool = False,
               state: AppState | None = None) -> Litestar:
    """Build the HTTP app.

    With `state`, the caller owns its connections (`flywheel up` shares one
    state between API and worker); otherwise the app connects on startup and
    disconnects on shutdown.
    """
    owned = state is None
    state = state or build_state(settings, plugins, load_entrypoints=load_entrypoints)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncGenerator[None, None]:
        if owned:
            await state.start()
        await state.start_serving()
        tune_for_serving()
        try:
            yield
        finally:
            await state.stop_serving()
            if owned:
                await state.stop()

    plugin_routes = [handler for _, handler in state.contributions.routes]
    prometheus = PrometheusConfig(app_name="flywheel", group_path=True, exclude=["/metrics"])
    app = Litestar(
        route_handlers=[*CORE_ROUTES, *plugin_routes, console_router(state), docs_assets_router()],
        lifespan=[lifespan],
        middleware=[
            *([request_tracing_middleware()] if tracing_enabled() else []),
            prometheus.middleware,
            # HEAD is authenticated like GET (Litestar's default would let it through).
            # Console pages authenticate by session cookie instead (server/console/middleware.py).
            DefineMiddleware(ApiKeyAuthentication, exclude_from_auth_key="public", exclude_http_methods=["OPTIONS"]),
            input_guard,  # NUL, invalid UTF-8, hostile nesting: refused before any handler or store sees them
            idempotency_middleware,  # after auth: keys are per tenant
        ],
        guards=[scope_guard],
        dependencies={"principal": Provide(provide_principal, sync_to_thread=False)},
        exception_handlers=with_html_errors(EXCEPTION_HANDLERS),  # HTML below /console
        template_config=console_templates(state),
        openapi_config=OpenAPIConfig(
            title="Flywheel", version=__version__, path="/schema",
            # The document and its viewer are public, like /healthz, and not API operations themselves.
            openapi_router=Router(path="/schema", route_handlers=[], opt={"public": True}, include_in_schema=False),
            render_plugins=render_plugins(),  # Swagger UI with its assets served here: works offline
            components=Components(security_schemes={
                "apiKey": SecurityScheme(type="http", scheme="bearer", description="Flywheel API key")}),
            security=[{"apiKey": []}],
        ),
        cors_config=cors_config(settings),  # off unless FLYWHEEL_CORS_ORIGINS is set
        compression_config=CompressionConfig(backend="gzip", minimum_size=4096),
        request_max_body_size=settings.max_body_bytes,
        debug=False,
        logging_config=None,  # logging is configured once, by configure_logging (server/telemetry.py)
    )
    app.state.flywheel = state
    document_api(app)
    if settings.ingest_fast_path:
        app.asgi_handler = IngestFastPath(app.asgi_handler, state, prometheus, cors=bool(settings.cors_origins))
    fast = fast_routes_of(app)
    if fast and settings.fast_routes:
        app.asgi_handler = FastRoutes(app.asgi_handler, state, fast, prometheus, cors=bool(settings.cors_origins))
    app.asgi_handler = HostCheck(app.asgi_handler, settings.allowed_host_names)  # in front of everything
    return app

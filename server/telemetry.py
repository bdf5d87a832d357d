"""Tracing (OpenTelemetry), structured logs (structlog), request spans.

`configure_tracing` installs the process-wide tracer provider once, exporting
over OTLP, when an endpoint is configured; without one, tracing stays off
(OpenTelemetry's no-op provider) and costs nothing. Spans are made for requests (the
ASGI middleware), queries (db/pool.py), jobs (jobs/runner.py) and hook calls
(hooks.py).
"""

from __future__ import annotations

import logging
import sys

import structlog
from litestar.middleware import DefineMiddleware
from litestar.plugins.opentelemetry import OpenTelemetryConfig
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from flywheel.server.settings import Settings

_configured = False


def configure_tracing(settings: Settings, *, service: str = "flywheel") -> TracerProvider | None:
    """Install a tracer provider once per process; returns it if installed now."""
    global _configured
    if _configured or isinstance(trace.get_tracer_provider(), TracerProvider):
        _configured = True
        return None
    if not settings.otlp_endpoint:
        # No exporter, no spans: the no-op provider stays, and create_app leaves
        # out the request middleware (measured: ~15% of a /score request).
        _configured = True
        return None
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    if settings.otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        endpoint = settings.otlp_endpoint.rstrip("/") + "/v1/traces"
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    trace.set_tracer_provider(provider)
    _configured = True
    return provider


def tracing_enabled() -> bool:
    """Whether a real tracer provider is installed (an OTLP exporter, or a test's)."""
    return isinstance(trace.get_tracer_provider(), TracerProvider)


def request_tracing_middleware() -> DefineMiddleware:
    """One span per HTTP request, named by route template, not raw path."""
    # One span per request; the per-message receive/send spans cost more than
    # they tell (measured: a third of the request overhead on /v1/events).
    return OpenTelemetryConfig(exclude=["/healthz", "/metrics"], exclude_spans=["receive", "send"]).middleware


def configure_logging(settings: Settings) -> None:
    """Structured logs: JSON lines when FLYWHEEL_LOG_JSON is set (or not a TTY)."""
    level = getattr(logging, settings.log_level.upper())
    as_json = settings.log_json or not sys.stderr.isatty()
    # Tracebacks without local variables: a frame's locals can hold a key or a
    # customer's data, and logs must never carry secrets.
    renderer = structlog.processors.JSONRenderer() if as_json else structlog.dev.ConsoleRenderer(
        exception_formatter=structlog.dev.RichTracebackFormatter(show_locals=False))
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(level=max(level, logging.WARNING), stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    # httpx logs every request it makes at INFO ("HTTP Request: POST ..."): a line per upstream
    # call is noise at best, and a URL in the log at worst.
    logging.getLogger("httpx").setLevel(max(level, logging.WARNING))

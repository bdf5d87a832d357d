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


class _CurrentStderr(logging.StreamHandler):
    """Writes to `sys.stderr` as it is at each line, not as it was at start-up.

    While a rich progress bar is shown, sys.stderr is rich's proxy, which
    prints each line above the bar instead of through it.
    """

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):  # noqa: D401
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


class _LibraryThreshold(logging.Filter):
    """Flywheel's own lines (structlog's, or a `flywheel.*` logger's) at any level; a library's from `floor` up."""

    def __init__(self, floor: int) -> None:
        super().__init__()
        self.floor = floor

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= self.floor or isinstance(record.msg, dict) or record.name.startswith("flywheel")


def configure_logging(settings: Settings) -> None:
    """One stream of log lines, Flywheel's and every library's (uvicorn, ARQ, asyncpg...).

    JSON lines when FLYWHEEL_LOG_JSON is set (or stderr is not a TTY), readable
    lines otherwise; structlog renders both its own events and stdlib records
    (ProcessorFormatter), so `FLYWHEEL_LOG_JSON=1` makes every line JSON.
    Flywheel's loggers log at FLYWHEEL_LOG_LEVEL; libraries from WARNING up
    (from INFO at DEBUG), so an ARQ line per job or uvicorn's start-up chatter
    stay out unless asked for.
    """
    level = getattr(logging, settings.log_level.upper())
    as_json = settings.log_json or not sys.stderr.isatty()
    # Tracebacks without local variables: a frame's locals can hold a key or a
    # customer's data, and logs must never carry secrets.
    renderer = structlog.processors.JSONRenderer() if as_json else structlog.dev.ConsoleRenderer(
        exception_formatter=structlog.dev.RichTracebackFormatter(show_locals=False))
    shared = [structlog.contextvars.merge_contextvars, structlog.stdlib.add_logger_name,
              structlog.processors.add_log_level, structlog.processors.TimeStamper(fmt="iso", utc=True)]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=False,
    )
    handler = _CurrentStderr()
    # Libraries from WARNING up; at DEBUG their INFO lines too (ARQ's per job, uvicorn's start-up).
    handler.addFilter(_LibraryThreshold(logging.INFO if level <= logging.DEBUG else max(level, logging.WARNING)))
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info, renderer]))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    # uvicorn (log_config=None) and ARQ set no handlers of their own: their records reach `handler`.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "arq"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
    # httpx logs every request it makes at INFO ("HTTP Request: POST ..."): a line per upstream
    # call is noise at best, and a URL in the log at worst.
    logging.getLogger("httpx").setLevel(max(level, logging.WARNING))

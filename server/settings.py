"""Settings: one Struct, read from the environment, validated at startup.

A bad value stops the process with one message naming the variable at fault
(the CLI exits with code 2).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit, urlunsplit

import msgspec

Port = Annotated[int, msgspec.Meta(ge=1, le=65535)]
PositiveInt = Annotated[int, msgspec.Meta(ge=1)]
Seconds = Annotated[float, msgspec.Meta(gt=0, le=3600)]
# A browser origin exactly as browsers send it (scheme, host, optional port; no path), or `*`.
CorsOrigin = Annotated[str, msgspec.Meta(pattern=r"^(\*|https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?|https?://\[[0-9a-fA-F:]+\](:[0-9]{1,5})?)$")]


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Everything Flywheel reads from its environment.

    Unset `database_url` / `redis_url` / `store_url` mean "embedded" for
    `flywheel up`: Postgres and Redis under `data_dir`, and a local folder as
    the object store.
    """

    database_url: str | None = None
    redis_url: str | None = None
    store_url: str | None = None
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    data_dir: str = ".flywheel"
    host: str = "127.0.0.1"
    port: Port = 8000
    # Host header values the API answers to (DNS rebinding); None: derived
    # from `host` (see `allowed_host_names`).
    allowed_hosts: list[str] | None = None
    # Origins whose pages may call the API from a browser (CORS); None: no CORS headers at all.
    cors_origins: list[CorsOrigin] | None = None
    # A client must send its request headers within this, and its body
    # without pausing longer than `http_body_timeout_s` (slow clients).
    http_header_timeout_s: Seconds = 10.0
    http_body_timeout_s: Seconds = 30.0
    plugins: list[str] | None = None
    trace_hooks: bool = False
    otlp_endpoint: str | None = None
    log_level: str = "INFO"
    log_json: bool = False
    queue_name: str = "flywheel:queue"
    db_pool_size: PositiveInt = 10
    # A running job's claim lapses this long after its worker stops renewing it (a killed
    # worker): then another worker takes the job (server/jobs/worker.py).
    job_lease_s: Seconds = 30.0
    max_body_bytes: PositiveInt = 16 * 1024 * 1024
    # Ingestion (see server/ingest/engine.py for what each one bounds).
    ingest_queue_events: PositiveInt = 200_000
    ingest_flush_events: PositiveInt = 5_000
    ingest_flushers: PositiveInt = 2
    ingest_parallel_flush_events: PositiveInt = 1_000
    spool_max_bytes: PositiveInt = 1024 * 1024 * 1024
    # A group commit that takes longer goes to the spool (a hung Postgres).
    ingest_flush_timeout_s: Seconds = 5.0
    events_retention_days: int = 0
    events_max_age_days: PositiveInt = 365
    archive_jsonl: bool = True
    ingest_fast_path: bool = True
    # Plugin routes marked opt={"fast_path": ...} answered in front of Litestar (server/fast_routes.py).
    fast_routes: bool = True
    # Fernet key(s) for secrets plugins store (comma-separated: the first encrypts, all decrypt,
    # for rotation). Unset: `<data_dir>/secret.key` when it exists or Flywheel is embedded.
    secret_key: str | None = None
    # How untrusted test suites run (server/sandbox/): "auto" is bubblewrap when `bwrap` is
    # installed, else none (sandboxed jobs then fail saying so).
    sandbox: Literal["auto", "bubblewrap", "docker", "none"] = "auto"
    # A Dask scheduler (tcp://host:8786): families that provide Parquet partitions train on its
    # workers with lightgbm.dask (server/models/dask_training.py). None: training stays on the worker.
    dask_scheduler: str | None = None

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).expanduser().resolve()

    @property
    def embedded(self) -> bool:
        """True when Flywheel must start its own Postgres or Redis."""
        return not (self.database_url and self.redis_url)

    @property
    def allowed_host_names(self) -> list[str]:
        """The Host header values accepted: `allowed_hosts`, or what `host` is reached by.

        Listening on every interface (0.0.0.0, ::) the names clients use are
        unknown, so any host is accepted unless FLYWHEEL_ALLOWED_HOSTS says.
        """
        if self.allowed_hosts:
            return list(self.allowed_hosts)
        if self.host in ("0.0.0.0", "::", ""):
            return ["*"]
        if self.host in ("127.0.0.1", "localhost", "::1"):
            return ["127.0.0.1", "localhost", "[::1]", "::1"]
        return [self.host]

    def redacted(self) -> dict[str, object]:
        """Settings safe to log: passwords in URLs are masked."""
        out = msgspec.structs.asdict(self)
        for key in ("database_url", "redis_url", "store_url"):
            if out[key]:
                out[key] = redact_url(out[key])
        if out["secret_key"]:
            out["secret_key"] = "***"
        return out


# Field -> environment variable. Names follow what operators already use.
ENV_VARS: dict[str, str] = {
    "database_url": "DATABASE_URL",
    "redis_url": "REDIS_URL",
    "store_url": "FLYWHEEL_STORE_URL",
    "s3_endpoint_url": "FLYWHEEL_S3_ENDPOINT_URL",
    "s3_region": "AWS_DEFAULT_REGION",
    "data_dir": "FLYWHEEL_DATA_DIR",
    "host": "FLYWHEEL_HOST",
    "port": "FLYWHEEL_PORT",
    "allowed_hosts": "FLYWHEEL_ALLOWED_HOSTS",
    "cors_origins": "FLYWHEEL_CORS_ORIGINS",
    "http_header_timeout_s": "FLYWHEEL_HTTP_HEADER_TIMEOUT_S",
    "http_body_timeout_s": "FLYWHEEL_HTTP_BODY_TIMEOUT_S",
    "plugins": "FLYWHEEL_PLUGINS",
    "trace_hooks": "FLYWHEEL_TRACE_HOOKS",
    "otlp_endpoint": "OTEL_EXPORTER_OTLP_ENDPOINT",
    "log_level": "FLYWHEEL_LOG_LEVEL",
    "log_json": "FLYWHEEL_LOG_JSON",
    "queue_name": "FLYWHEEL_QUEUE",
    "db_pool_size": "FLYWHEEL_DB_POOL_SIZE",
    "job_lease_s": "FLYWHEEL_JOB_LEASE_S",
    "max_body_bytes": "FLYWHEEL_MAX_BODY_BYTES",
    "ingest_queue_events": "FLYWHEEL_INGEST_QUEUE_EVENTS",
    "ingest_flush_events": "FLYWHEEL_INGEST_FLUSH_EVENTS",
    "ingest_flushers": "FLYWHEEL_INGEST_FLUSHERS",
    "ingest_parallel_flush_events": "FLYWHEEL_INGEST_PARALLEL_FLUSH_EVENTS",
    "spool_max_bytes": "FLYWHEEL_SPOOL_MAX_BYTES",
    "ingest_flush_timeout_s": "FLYWHEEL_INGEST_FLUSH_TIMEOUT_S",
    "events_retention_days": "FLYWHEEL_EVENTS_RETENTION_DAYS",
    "events_max_age_days": "FLYWHEEL_EVENTS_MAX_AGE_DAYS",
    "archive_jsonl": "FLYWHEEL_ARCHIVE_JSONL",
    "ingest_fast_path": "FLYWHEEL_INGEST_FAST_PATH",
    "fast_routes": "FLYWHEEL_FAST_ROUTES",
    "secret_key": "FLYWHEEL_SECRET_KEY",
    "sandbox": "FLYWHEEL_SANDBOX",
    "dask_scheduler": "FLYWHEEL_DASK_SCHEDULER",
}
# Fallbacks read when the first variable is unset.
ENV_FALLBACKS = {"s3_endpoint_url": "AWS_ENDPOINT_URL", "s3_region": "AWS_REGION"}

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class SettingsError(Exception):
    """A setting is wrong; the message names the environment variable."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable


def load_settings(environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Read settings from `environ` (default: os.environ); `overrides` win."""
    env = os.environ if environ is None else environ
    raw: dict[str, object] = {}
    for field, var in ENV_VARS.items():
        value = env.get(var)
        if value is None and field in ENV_FALLBACKS:
            value = env.get(ENV_FALLBACKS[field])
        if value is None or value == "" and field not in ("trace_hooks", "log_json", "archive_jsonl"):
            continue
        raw[field] = _parse(field, var, value)
    raw.update({k: v for k, v in overrides.items() if v is not None})
    try:
        settings = msgspec.convert(raw, Settings, strict=False)
    except msgspec.ValidationError as exc:
        field = _field_of(str(exc))
        variable = ENV_VARS.get(field, field) if field else "settings"
        raise SettingsError(variable, _problem_of(str(exc), raw.get(field) if field else None)) from None
    for field, check in _CHECKS.items():
        value = getattr(settings, field)
        problem = check(value) if value else None
        if problem:
            raise SettingsError(ENV_VARS[field], problem)
    return settings


def _scheme_check(allowed: tuple[str, ...], hint: str):
    def check(url: str) -> str | None:
        parts = urlsplit(url)
        if parts.scheme not in allowed:
            return f"must be {hint}, got {redact_url(url)!r}"
        if parts.scheme == "s3" and not parts.netloc:
            return "an s3:// URL needs a bucket: s3://BUCKET/PREFIX"
        return None

    return check


_CHECKS = {
    "database_url": _scheme_check(("postgres", "postgresql"), "a postgresql:// URL"),
    "redis_url": _scheme_check(("redis", "rediss", "unix"), "a redis://, rediss:// or unix:// URL"),
    "store_url": _scheme_check(("file", "s3"), "file://PATH or s3://BUCKET/PREFIX"),
    "log_level": lambda v: None if v.upper() in ("DEBUG", "INFO", "WARNING", "ERROR")
    else "must be one of DEBUG, INFO, WARNING, ERROR",
}


def _parse(field: str, var: str, value: str) -> object:
    if field in ("trace_hooks", "log_json", "archive_jsonl"):
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise SettingsError(var, f"expected a boolean (1/0, true/false), got {value!r}")
    if field in ("plugins", "allowed_hosts", "cors_origins"):
        return [name.strip() for name in value.split(",") if name.strip()]
    return value


def _field_of(message: str) -> str | None:
    match = re.search(r"at `\$\.(\w+)", message)
    return match.group(1) if match else None


_KINDS = {"int": "a whole number", "float": "a number", "bool": "a boolean (1/0, true/false)", "str": "text"}


def _problem_of(message: str, value: object = None) -> str:
    """msgspec's message in words a person setting a variable reads: what was expected, what was set."""
    problem = re.sub(r"\s*-\s*at `\$[^`]*`$", "", message)
    expected = re.match(r"Expected `(\w+)`, got `\w+`$", problem)
    if expected and isinstance(value, str):
        return f"expected {_KINDS.get(expected.group(1), expected.group(1))}, got {value!r}"
    if isinstance(value, str) and len(value) <= 200:
        return f"{problem[0].lower()}{problem[1:]}, got {value!r}"
    return problem


def redact_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def _dask_scheduler_check(url: str) -> str | None:
    """A scheduler address as distributed.Client takes it: tcp:// or tls://, a host and a port."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme not in ("tcp", "tls") or not parts.hostname or port is None or parts.path not in ("", "/"):
        return f"must be a Dask scheduler address tcp://HOST:PORT or tls://HOST:PORT, got {redact_url(url)!r}"
    return None


_CHECKS["dask_scheduler"] = _dask_scheduler_check

"""Every hook a Flywheel plugin can implement, in one place.

Plugins implement hooks with ``from flywheel.server import hookimpl``::

    @hookimpl
    def register_jobs():
        return [JobSpec(name="myplugin.rebuild", func=rebuild)]

Rules:

- ``register_*`` hooks run once at startup and return a list of contract
  objects. Their failures stop startup, naming the plugin.
- ``on_*`` hooks are notifications. ``on_startup`` failures stop startup;
  the others are isolated: a failing implementation is logged and skipped.
- Any implementation may be ``async def``: the host awaits what it returns.
- An implementation may accept fewer arguments than the spec lists, in any
  order; arguments are only ever added, never renamed or removed.
- Implementations run in registration order (last registered first, as in
  pluggy), adjusted by ``tryfirst`` / ``trylast``. No built-in hook depends on
  order except where noted.

Each spec says what it returns, when it is called and since which version.
The plugin author guide (docs/plugins.md) has one heading per hook; a test
fails when a hook is missing there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import click

    from flywheel.contracts.events import Event
    from flywheel.contracts.jobs import CronSpec, JobSpec
    from flywheel.contracts.models import ModelFamily, ServedModel
    from flywheel.contracts.pages import Page
    from flywheel.contracts.plugins import MigrationSource
    from flywheel.server.alerts.contracts import AlertCondition
    from flywheel.server.state import AppState

PROJECT = "flywheel"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


def subscribe(*event_types: type[Event] | str):
    """Limit an `on_events_committed` implementation to some event types.

    ``@subscribe(SmartDaily)`` (classes, or their tags as strings) under
    ``@hookimpl``: the implementation then receives only events of those
    types, and is not called for commits that hold none. Without it, an
    implementation receives every committed event, so every stored event is
    decoded again for it; at high intake that costs as much as the intake's
    own decoding. Since 0.1.
    """
    tags = frozenset(t if isinstance(t, str) else t.__struct_config__.tag for t in event_types)
    if not tags:
        raise ValueError("subscribe() needs at least one event type")

    def mark(func):
        func.flywheel_event_types = tags
        return func

    return mark


# ---------------------------------------------------------------------------
# Registration: called once at startup; results are validated together.
# ---------------------------------------------------------------------------


@hookspec
def register_routes() -> list[Any]:
    """Litestar route handlers, controllers or routers to mount on the app.

    Every handler needs authentication unless marked ``opt={"public": True}``;
    set the scope it needs with ``opt={"scope": "read"}`` (default: ``read``
    for GET, ``write`` otherwise). Since 0.1.
    """


@hookspec
def register_migrations() -> list[MigrationSource]:
    """Folders of plain SQL migrations, each in the plugin's own namespace.

    Applied after the core's, in plugin load order. Since 0.1.
    """


@hookspec
def register_event_types() -> list[type[Event]]:
    """`Event` subclasses with a namespaced tag (``plugin.event``). Since 0.1."""


@hookspec
def register_scrubbers() -> list[Any]:
    """PII scrubbers applied to event string values before storage. Since 0.1."""


@hookspec
def register_jobs() -> list[JobSpec]:
    """Job functions for the ARQ workers, with namespaced names. Since 0.1."""


@hookspec
def register_cron_jobs() -> list[CronSpec]:
    """Schedules that run registered jobs. Since 0.1."""


@hookspec
def register_cli_commands() -> list[click.Command]:
    """Click commands or groups added under ``flywheel``. Since 0.1.

    Name a group after the plugin (``flywheel drives import ...``).
    """


@hookspec
def register_model_families() -> list[ModelFamily]:
    """Model families the plugin trains and serves. Since 0.1."""


@hookspec
def register_pages() -> list[Page]:
    """Pages of the web console, mounted below ``/console/<plugin>`` and listed
    in its navigation; handlers get the signed-in session's ``principal``.
    Since 0.1.
    """


@hookspec
def list_served_models(state: AppState, tenant_id: Any) -> list[ServedModel]:
    """Models the plugin serves to this tenant under an OpenAI-compatible API (the `model`
    names its clients ask for). `GET /v1/models` lists them in OpenAI's `data` shape beside
    Flywheel's families, so an OpenAI client's `models.list()` works. Since 0.3.
    """


@hookspec
def register_alert_conditions() -> list[AlertCondition]:
    """Alert conditions (`AlertCondition`: a namespaced name, a description, a default
    severity and ``async evaluate(state, tenant_id) -> list[Finding]``). The core's cron job
    `core.evaluate_alerts` evaluates each one for every tenant, hourly, and raises an alert
    per finding (deduplicated while open); with `auto_resolve`, an alert whose finding is
    gone is resolved. Collected once, on first use. Since 0.4.
    """


@hookspec
def register_contracts() -> list[type[Any]]:
    """The plugin's own contracts: msgspec Structs of its request and response bodies and
    job payloads. `flywheel schemas` writes a JSON Schema of each as `<plugin>.<Struct>`
    (event types already come from `register_event_types`). Collected when asked. Since 0.4.
    """


# ---------------------------------------------------------------------------
# Lifecycle notifications.
# ---------------------------------------------------------------------------


@hookspec
def on_startup(state: AppState) -> None:
    """Called once the database, Redis and the object store are ready, in the
    API process and in each worker process. A failure stops startup. Since 0.1.
    """


@hookspec
def on_shutdown(state: AppState) -> None:
    """Called before connections close. Failures are logged, not raised. Since 0.1."""


@hookspec
def on_demo(state: AppState, tenant_id: Any) -> None:
    """Called by ``flywheel up --demo`` after the demo tenant exists: load demo
    data for it (idempotently: a second start must not duplicate it). Since 0.1.
    """


@hookspec
def on_events_committed(state: AppState, tenant_id: Any, events: list[Event]) -> None:
    """Called after a batch of events is durably stored. Runs off the request
    path: a slow or failing implementation never blocks intake. Since 0.1.
    """


# ---------------------------------------------------------------------------
# Monitoring: asked by the daily monitoring job (server/monitoring) about the
# plugin's own families; return None for any other family.
# ---------------------------------------------------------------------------


@hookspec
def monitoring_thresholds(family: str) -> MonitoringThresholds | None:
    """The family's own default monitoring thresholds (`MonitoringThresholds`), when they
    differ from the core's; tenants override them field by field. Only the plugin that
    declares the family is heard. Since 0.4.
    """


@hookspec
def monitoring_rows(state: AppState, tenant_id: Any, family: str, version: int, day: date) -> pa.Table | None:
    """The rows `version` of `family` scored for `day`, when the plugin keeps them: a
    `pyarrow.Table` with the version's feature columns and `margin` (the log-odds it
    scored). Drift is then measured on these rather than on what the scoring path counted
    on that UTC day: for families that score data days in batch, history included. An
    empty table: nothing scored for that day. Since 0.4.
    """


@hookspec
def monitoring_outcomes(state: AppState, tenant_id: Any, family: str, version: int,
                        day: date) -> MonitoringOutcomes | None:
    """What became of the rows `version` of `family` scored for `day`: each row's predicted
    probability and its observed 0/1 label (`MonitoringOutcomes`), for calibration. None
    until the day's labels are known; the daily job asks again for up to 60 days. Since 0.4.
    """


if TYPE_CHECKING:
    from datetime import date

    import pyarrow as pa

    from flywheel.server.monitoring.contracts import MonitoringOutcomes, MonitoringThresholds

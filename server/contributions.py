"""What plugins contribute, collected once at startup and validated together.

Every `register_*` hook is called here. Conflicts (two plugins claiming the
same route, job, event type, ...) stop startup with a message naming both
plugins and their versions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import click
import msgspec
from litestar import Router

from flywheel.contracts.events import Event, GenericEvent
from flywheel.contracts.jobs import CronSpec, JobSpec
from flywheel.contracts.models import ModelFamily
from flywheel.contracts.pages import Page
from flywheel.contracts.pii import Scrubber
from flywheel.contracts.plugins import MigrationSource
from flywheel.server.hooks import call_hook_sync
from flywheel.server.plugin_manager import FlywheelPluginManager

CORE = "core"


class ContributionError(Exception):
    """Plugins contributed something invalid or conflicting."""


@dataclass
class Contributions:
    """Everything the loaded plugins registered, keyed by name, with its owner."""

    routes: list[tuple[str, Any]] = field(default_factory=list)
    migrations: list[tuple[str, MigrationSource]] = field(default_factory=list)
    event_types: dict[str, tuple[str, type[Event]]] = field(default_factory=dict)
    scrubbers: list[tuple[str, Any]] = field(default_factory=list)
    jobs: dict[str, tuple[str, JobSpec]] = field(default_factory=dict)
    cron_jobs: dict[str, tuple[str, CronSpec]] = field(default_factory=dict)
    cli_commands: dict[str, tuple[str, click.Command]] = field(default_factory=dict)
    model_families: dict[str, tuple[str, ModelFamily]] = field(default_factory=dict)
    pages: dict[str, tuple[str, Page]] = field(default_factory=dict)


@dataclass(frozen=True)
class _Kind:
    """One `register_*` hook: what it returns, where it goes, what must hold for each item."""

    hook: str
    table: str  # the Contributions attribute
    what: str  # for messages: "job", "event type"...
    expected: type | None = None  # each item must be an instance (None: `check` decides)
    key: Callable[[Any], str] | None = None  # the item's unique name; None: items are listed, not keyed
    namespaced: bool = False  # the key must start with "<plugin>."
    check: Callable[[_Collector, Any, str], None] | None = None  # more rules, raising ContributionError


class _Collector:
    def __init__(self, pm: FlywheelPluginManager, reserved_commands: set[str]) -> None:
        self.pm = pm
        self.c = Contributions()
        self.label = _labeller(pm)
        self.reserved_commands = reserved_commands

    def claim(self, table: dict, key: str, plugin: str, value: Any, what: str) -> None:
        if key in table:
            raise ContributionError(f"{what} {key!r} is registered by both {self.label(table[key][0])} "
                                    f"and {self.label(plugin)}")
        table[key] = (plugin, value)

    def add(self, kind: _Kind) -> None:
        for plugin, items in call_hook_sync(self.pm, kind.hook):
            for item in _as_list(items, plugin, kind.hook, self.label):
                if kind.expected is not None:
                    _check_type(item, kind.expected, plugin, kind.hook, self.label)
                if kind.check is not None:
                    kind.check(self, item, plugin)
                table = getattr(self.c, kind.table)
                if kind.key is None:
                    table.append((plugin, item))
                    continue
                name = kind.key(item)
                if kind.namespaced:
                    _check_namespaced(name, plugin, kind.what, self.label)
                self.claim(table, name, plugin, item, kind.what)


def _event_type(collector: _Collector, cls: Any, plugin: str) -> None:
    if not (isinstance(cls, type) and issubclass(cls, Event)) or not isinstance(cls.__struct_config__.tag, str):
        raise ContributionError(f"{collector.label(plugin)} registered {cls!r}, which is not a tagged Event subclass")


def _cron_job(collector: _Collector, spec: CronSpec, plugin: str) -> None:
    if spec.job not in collector.c.jobs:
        raise ContributionError(f"{collector.label(plugin)} schedules cron {spec.name!r} for unknown job {spec.job!r}")


def _migration(collector: _Collector, source: MigrationSource, plugin: str) -> None:
    if source.namespace == CORE or any(s.namespace == source.namespace for _, s in collector.c.migrations):
        raise ContributionError(f"{collector.label(plugin)} reuses migration namespace {source.namespace!r}")


def _cli_command(collector: _Collector, command: click.Command, plugin: str) -> None:
    if command.name in collector.reserved_commands:
        raise ContributionError(f"{collector.label(plugin)} registers CLI command {command.name!r}, a core command")


def _model_family(collector: _Collector, family: ModelFamily, plugin: str) -> None:
    _check_family(family, plugin, collector.label)


# In this order: cron jobs name jobs registered before them.
KINDS = [
    _Kind("register_event_types", "event_types", "event type", None, lambda cls: cls.__struct_config__.tag,
          namespaced=True, check=_event_type),
    _Kind("register_jobs", "jobs", "job", JobSpec, lambda spec: spec.name, namespaced=True),
    _Kind("register_cron_jobs", "cron_jobs", "cron job", CronSpec, lambda spec: spec.name, check=_cron_job),
    _Kind("register_migrations", "migrations", "migration source", MigrationSource, check=_migration),
    _Kind("register_cli_commands", "cli_commands", "CLI command", click.Command, lambda cmd: cmd.name,
          check=_cli_command),
    _Kind("register_model_families", "model_families", "model family", ModelFamily, lambda f: f.name,
          namespaced=True, check=_model_family),
    _Kind("register_scrubbers", "scrubbers", "scrubber", Scrubber),
]


def collect(pm: FlywheelPluginManager, *, core_routes: list[Any] = (), core_jobs: list[JobSpec] = (),
            reserved_commands: set[str] = frozenset()) -> Contributions:
    """Call every `register_*` hook and validate the results."""
    collector = _Collector(pm, set(reserved_commands))
    c = collector.c
    c.event_types[GenericEvent.__struct_config__.tag] = (CORE, GenericEvent)
    for spec in core_jobs:
        collector.claim(c.jobs, spec.name, CORE, spec, "job")
    for kind in KINDS:
        collector.add(kind)
    _collect_pages(c, pm, collector.claim, collector.label)
    _collect_routes(c, pm, core_routes, collector.label)
    return c


def _collect_routes(c: Contributions, pm: FlywheelPluginManager, core_routes: list[Any], label) -> None:
    owners: dict[tuple[str, str], str] = {}
    groups = [(CORE, list(core_routes))] + [
        (plugin, _as_list(items, plugin, "register_routes", label))
        for plugin, items in call_hook_sync(pm, "register_routes")
    ]
    for plugin, handlers in groups:
        try:
            probe = Router(path="/", route_handlers=handlers)
        except Exception as exc:
            raise ContributionError(f"{label(plugin)} registered invalid routes: {exc}") from exc
        for route in probe.routes:
            if plugin != CORE and (route.path == "/console" or route.path.startswith("/console/")):
                raise ContributionError(f"{label(plugin)} registers route {route.path} with register_routes: "
                                        "console pages come from register_pages")
            for method in sorted(route.methods - {"OPTIONS", "HEAD"}):
                key = (method, route.path)
                if key in owners:
                    raise ContributionError(
                        f"route {method} {route.path} is registered by both {label(owners[key])} and {label(plugin)}"
                    )
                owners[key] = plugin
        if plugin != CORE:
            c.routes += [(plugin, h) for h in handlers]


def _collect_pages(c: Contributions, pm: FlywheelPluginManager, claim, label) -> None:
    """Pages must live below /console/<plugin> and must not mount the same route twice."""
    from flywheel.server.console.pages import PageError, check_page, is_mountable

    owners: dict[tuple[str, str], str] = {}
    mounted: set[int] = set()  # one Controller may serve several pages: it is mounted once
    for plugin, items in call_hook_sync(pm, "register_pages"):
        for page in _as_list(items, plugin, "register_pages", label):
            _check_type(page, Page, plugin, "register_pages", label)
            try:
                routes = check_page(page, plugin)
            except PageError as exc:
                raise ContributionError(f"{label(plugin)}: {exc}") from None
            claim(c.pages, page.path, plugin, page, "page")
            if is_mountable(page.handler):
                if id(page.handler) in mounted:
                    continue
                mounted.add(id(page.handler))
            for method, path in routes:
                if (method, path) in owners:
                    raise ContributionError(f"console route {method} /console{path} is registered twice by "
                                            f"{label(plugin)}")
                owners[(method, path)] = plugin


def _labeller(pm: FlywheelPluginManager):
    def label(plugin: str) -> str:
        info = pm.infos.get(plugin)
        return f"plugin {plugin!r} {info.version}" if info else ("the core" if plugin == CORE else repr(plugin))

    return label


def _as_list(items: Any, plugin: str, hook: str, label) -> list[Any]:
    if not isinstance(items, (list, tuple)):
        raise ContributionError(f"{label(plugin)}: {hook} must return a list, got {type(items).__name__}")
    return list(items)


def _check_family(family: ModelFamily, plugin: str, label) -> None:
    from flywheel.server.models.features import FeatureSchemaError, feature_spec

    try:
        spec = feature_spec(family.features)
    except FeatureSchemaError as exc:
        raise ContributionError(f"{label(plugin)}: model family {family.name!r}: {exc}") from None
    unknown = [name for name in family.monotone if name not in spec.names]
    if unknown:
        raise ContributionError(f"{label(plugin)}: model family {family.name!r} has monotone constraints on "
                                f"unknown features {unknown}")
    if family.label in spec.names:
        raise ContributionError(f"{label(plugin)}: model family {family.name!r} uses its label "
                                f"{family.label!r} as a feature")


def _check_type(value: Any, expected: type, plugin: str, hook: str, label) -> None:
    if not isinstance(value, expected):
        raise ContributionError(f"{label(plugin)}: {hook} returned {value!r}, expected {expected.__name__}")


def _check_namespaced(name: str, plugin: str, what: str, label) -> None:
    if not name.startswith(f"{plugin}."):
        raise ContributionError(f"{label(plugin)}: {what} {name!r} must be namespaced as '{plugin}.<name>'")


def struct_name(cls: type[msgspec.Struct]) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"

"""What plugins contribute, collected once at startup and validated together.

Every `register_*` hook is called here. Conflicts (two plugins claiming the
same route, job, event type, ...) stop startup with a message naming both
plugins and their versions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import click
import msgspec
from litestar import Router

from flywheel.contracts.events import Event, GenericEvent
from flywheel.contracts.jobs import CronSpec, JobSpec
from flywheel.contracts.models import ModelFamily
from flywheel.contracts.pages import Page
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


def collect(pm: FlywheelPluginManager, *, core_routes: list[Any] = (), core_jobs: list[JobSpec] = (),
            reserved_commands: set[str] = frozenset()) -> Contributions:
    """Call every `register_*` hook and validate the results."""
    c = Contributions()
    label = _labeller(pm)

    def claim(table: dict, key: str, plugin: str, value: Any, what: str) -> None:
        if key in table:
            raise ContributionError(f"{what} {key!r} is registered by both {label(table[key][0])} and {label(plugin)}")
        table[key] = (plugin, value)

    c.event_types[GenericEvent.__struct_config__.tag] = (CORE, GenericEvent)
    for spec in core_jobs:
        claim(c.jobs, spec.name, CORE, spec, "job")

    for plugin, items in call_hook_sync(pm, "register_event_types"):
        for cls in _as_list(items, plugin, "register_event_types", label):
            if not (isinstance(cls, type) and issubclass(cls, Event)) or not isinstance(cls.__struct_config__.tag, str):
                raise ContributionError(f"{label(plugin)} registered {cls!r}, which is not a tagged Event subclass")
            tag = cls.__struct_config__.tag
            _check_namespaced(tag, plugin, "event type", label)
            claim(c.event_types, tag, plugin, cls, "event type")

    for plugin, items in call_hook_sync(pm, "register_jobs"):
        for spec in _as_list(items, plugin, "register_jobs", label):
            _check_type(spec, JobSpec, plugin, "register_jobs", label)
            _check_namespaced(spec.name, plugin, "job", label)
            claim(c.jobs, spec.name, plugin, spec, "job")

    for plugin, items in call_hook_sync(pm, "register_cron_jobs"):
        for spec in _as_list(items, plugin, "register_cron_jobs", label):
            _check_type(spec, CronSpec, plugin, "register_cron_jobs", label)
            if spec.job not in c.jobs:
                raise ContributionError(f"{label(plugin)} schedules cron {spec.name!r} for unknown job {spec.job!r}")
            claim(c.cron_jobs, spec.name, plugin, spec, "cron job")

    for plugin, items in call_hook_sync(pm, "register_migrations"):
        for source in _as_list(items, plugin, "register_migrations", label):
            _check_type(source, MigrationSource, plugin, "register_migrations", label)
            if source.namespace == CORE or any(s.namespace == source.namespace for _, s in c.migrations):
                raise ContributionError(f"{label(plugin)} reuses migration namespace {source.namespace!r}")
            c.migrations.append((plugin, source))

    for plugin, items in call_hook_sync(pm, "register_cli_commands"):
        for command in _as_list(items, plugin, "register_cli_commands", label):
            _check_type(command, click.Command, plugin, "register_cli_commands", label)
            if command.name in reserved_commands:
                raise ContributionError(f"{label(plugin)} registers CLI command {command.name!r}, a core command")
            claim(c.cli_commands, command.name, plugin, command, "CLI command")

    for plugin, items in call_hook_sync(pm, "register_model_families"):
        for family in _as_list(items, plugin, "register_model_families", label):
            _check_type(family, ModelFamily, plugin, "register_model_families", label)
            _check_namespaced(family.name, plugin, "model family", label)
            _check_family(family, plugin, label)
            claim(c.model_families, family.name, plugin, family, "model family")

    _collect_pages(c, pm, claim, label)

    for plugin, items in call_hook_sync(pm, "register_scrubbers"):
        c.scrubbers += [(plugin, s) for s in _as_list(items, plugin, "register_scrubbers", label)]

    _collect_routes(c, pm, core_routes, label)
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

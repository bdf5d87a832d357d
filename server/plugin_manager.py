"""Loading plugins: entry points, the allow-list, and what `/v1/plugins` shows.

There is one plugin manager per app instance, never a module-global one, so
tests can build apps with exactly the plugins they need.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import pluggy

from flywheel.contracts.plugins import PluginRead
from flywheel.server import hookspecs

ENTRY_POINT_GROUP = "flywheel.plugins"
CORE_DISTRIBUTION = "flywheel"


class PluginLoadError(Exception):
    """A plugin could not be loaded; the message names it."""


@dataclass
class PluginInfo:
    name: str
    version: str
    builtin: bool
    plugin: Any = field(repr=False)


class FlywheelPluginManager(pluggy.PluginManager):
    """pluggy's manager plus what Flywheel knows of each plugin."""

    def __init__(self) -> None:
        super().__init__(hookspecs.PROJECT)
        self.add_hookspecs(hookspecs)
        self.infos: dict[str, PluginInfo] = {}

    def add(self, plugin: Any, name: str, version: str = "0", builtin: bool = False) -> None:
        if name in self.infos:
            raise PluginLoadError(f"two plugins are named {name!r}")
        try:
            self.register(plugin, name=name)
        except pluggy.PluginValidationError as exc:
            raise PluginLoadError(f"plugin {name!r} {version}: {exc}") from exc
        self.infos[name] = PluginInfo(name, version, builtin, plugin)

    def describe(self) -> list[PluginRead]:
        out = []
        for info in self.infos.values():
            hooks = sorted(caller.name for caller in self.get_hookcallers(info.plugin) or [])
            out.append(PluginRead(name=info.name, version=info.version, hooks=hooks, builtin=info.builtin))
        return sorted(out, key=lambda p: p.name)


def create_plugin_manager(
    plugins: Iterable[Any] = (), *, load_entrypoints: bool = False, allow: list[str] | None = None,
) -> FlywheelPluginManager:
    """Build a plugin manager.

    `plugins` are modules or objects registered directly (their name is
    `__flywheel_plugin_name__` or the module name). With `load_entrypoints`,
    every installed `flywheel.plugins` entry point is loaded too, restricted to
    `allow` when given; an allowed plugin that is not installed is an error.
    """
    pm = FlywheelPluginManager()
    for plugin in plugins:
        pm.add(plugin, _name_of(plugin), str(getattr(plugin, "__version__", "0")))
    if load_entrypoints:
        _load_entrypoints(pm, allow)
    pm.check_pending()
    return pm


def _name_of(plugin: Any) -> str:
    name = getattr(plugin, "__flywheel_plugin_name__", None)
    if name:
        return name
    if isinstance(plugin, ModuleType):
        return plugin.__name__.rsplit(".", 1)[-1] if plugin.__name__.startswith("flywheel.") else plugin.__name__
    return type(plugin).__name__


def _load_entrypoints(pm: FlywheelPluginManager, allow: list[str] | None) -> None:
    seen = set()
    for ep in sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        if allow is not None and ep.name not in allow:
            continue
        seen.add(ep.name)
        dist = ep.dist
        version = dist.version if dist else "0"
        where = f"{ep.name!r} ({dist.name if dist else '?'} {version}, entry point {ep.value})"
        try:
            plugin = ep.load()
        except Exception as exc:
            raise PluginLoadError(f"plugin {where} failed to import: {type(exc).__name__}: {exc}") from exc
        pm.add(plugin, ep.name, version, builtin=bool(dist and dist.name == CORE_DISTRIBUTION))
    missing = sorted(set(allow or ()) - seen)
    if missing:
        raise PluginLoadError(
            f"FLYWHEEL_PLUGINS names plugins that are not installed: {', '.join(missing)}"
        )

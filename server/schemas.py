"""JSON Schemas of every contract, for SDKs and for `flywheel schemas`.

The core's come from `flywheel.contracts`, event types from
`register_event_types` (named `event.<tag>`), and plugins' own request,
response and job-payload Structs from `register_contracts` (named
`<plugin>.<Struct>`).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from typing import Any

import msgspec

import flywheel.contracts
from flywheel.server.contributions import Contributions
from flywheel.server.hooks import call_hook_sync
from flywheel.server.plugin_manager import FlywheelPluginManager

HOOK = "register_contracts"


class ContractError(Exception):
    """A plugin registered something that is not a contract, or one name twice; the message names it."""


def _core_structs() -> dict[str, type[msgspec.Struct]]:
    found = {}
    for info in pkgutil.iter_modules(flywheel.contracts.__path__):
        module = importlib.import_module(f"flywheel.contracts.{info.name}")
        for name, obj in vars(module).items():
            if inspect.isclass(obj) and issubclass(obj, msgspec.Struct) and obj.__module__ == module.__name__:
                if _schema_able(obj):
                    found[name] = obj
    return found


def _schema_able(cls: type) -> bool:
    try:
        msgspec.json.schema(cls)
        return True
    except TypeError:  # specs holding callables (JobSpec, ModelFamily) are not wire contracts
        return False


def plugin_contracts(pm: FlywheelPluginManager) -> dict[str, type[msgspec.Struct]]:
    """`<plugin>.<Struct name>` -> Struct, from every plugin's `register_contracts`."""
    found: dict[str, type[msgspec.Struct]] = {}
    for plugin, items in call_hook_sync(pm, HOOK):
        for cls in items or []:
            if not (inspect.isclass(cls) and issubclass(cls, msgspec.Struct)) or not _schema_able(cls):
                raise ContractError(f"plugin {plugin!r}: {HOOK} returned {cls!r}, not a msgspec Struct "
                                    "with a JSON Schema")
            name = f"{plugin}.{cls.__name__}"
            if found.get(name, cls) is not cls:
                raise ContractError(f"plugin {plugin!r} registers two contracts named {cls.__name__!r}")
            found[name] = cls
    return found


def contract_schemas(contributions: Contributions,
                     pm: FlywheelPluginManager | None = None) -> dict[str, dict[str, Any]]:
    """Name -> JSON Schema; event types are named by their tag; with `pm`, plugins' contracts too."""
    out = {name: msgspec.json.schema(cls) for name, cls in sorted(_core_structs().items())}
    for tag, (_, cls) in sorted(contributions.event_types.items()):
        out[f"event.{tag}"] = msgspec.json.schema(cls)
    if pm is not None:
        out |= {name: msgspec.json.schema(cls) for name, cls in sorted(plugin_contracts(pm).items())}
    return out

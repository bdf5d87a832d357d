"""JSON Schemas of every contract, for SDKs and for `flywheel schemas`."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from typing import Any

import msgspec

import flywheel.contracts
from flywheel.server.contributions import Contributions


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


def contract_schemas(contributions: Contributions) -> dict[str, dict[str, Any]]:
    """Name -> JSON Schema; event types are named by their tag."""
    out = {name: msgspec.json.schema(cls) for name, cls in sorted(_core_structs().items())}
    for tag, (_, cls) in sorted(contributions.event_types.items()):
        out[f"event.{tag}"] = msgspec.json.schema(cls)
    return out

"""The model families plugins declare, looked up by name (training and serving both need them)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flywheel.contracts.models import ModelFamily
from flywheel.server.errors import NotFound

if TYPE_CHECKING:
    from flywheel.server.state import AppState


def family_of(state: AppState, name: str) -> ModelFamily:
    """The family registered as `name`, or 404 naming `$.family`."""
    entry = state.contributions.model_families.get(name)
    if entry is None:
        raise NotFound(f"no model family named {name!r}", field="$.family")
    return entry[1]

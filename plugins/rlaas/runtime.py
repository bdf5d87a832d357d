"""Where the plugin keeps its per-process objects: in `state.extras`, under `rlaas.*` keys."""

from __future__ import annotations

from typing import Any

from flywheel.plugins.rlaas.settings import RlaasSettings, load

SETTINGS = "rlaas.settings"


def settings_of(state: Any) -> RlaasSettings:
    """This process's rlaas settings, read from the environment once."""
    found = state.extras.get(SETTINGS)
    if found is None:
        found = state.extras[SETTINGS] = load()
    return found

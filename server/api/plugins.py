"""`GET /v1/plugins`: what is loaded, its version and the hooks it implements."""

from __future__ import annotations

from litestar import get
from litestar.datastructures import State

from flywheel.contracts.plugins import PluginRead


@get("/v1/plugins", operation_id="listPlugins", tags=["plugins"])
async def list_plugins(state: State) -> list[PluginRead]:
    """The loaded plugins: each one's name, version and the hooks it implements."""
    return state.flywheel.pm.describe()

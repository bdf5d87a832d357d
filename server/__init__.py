"""Flywheel's server core.

Plugins import `flywheel.server.plugin_api` (docs/plugins.md, "The plugin
API"). The names below are the 0.1 plugin API, kept importable from here for
plugins written against 0.1: deprecated, removed in 1.0.
"""

import importlib.metadata

from flywheel.server.auth.principal import Caller, Principal
from flywheel.server.errors import (
           ApiError,
           Conflict,
           Forbidden,
           InvalidInput,
           NotFound,
           Unavailable,
)
from flywheel.server.hookspecs import hookimpl, subscribe
from flywheel.server.jobs.context import JobContext

__version__ = importlib.metadata.version("flywheel")
__all__ = ["__version__", "hookimpl", "subscribe", "Caller", "Principal", "JobContext", "ApiError", "Conflict",
           "Forbidden", "InvalidInput", "NotFound", "Unavailable"]

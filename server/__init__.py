"""Flywheel's server core.

What a plugin imports from here is the plugin API, kept stable:
`hookimpl`, `subscribe`, `Principal` (the caller, a route dependency named `principal`),
`JobContext` (a job's first argument) and the errors a handler may raise.
"""

import importlib.metadata

from flywheel.server.auth.principal import Caller, Principal
from flywheel.server.errors import ApiError, Conflict, Forbidden, InvalidInput, NotFound, Unavailable
from flywheel.server.hookspecs import hookimpl, subscribe
from flywheel.server.jobs.context import JobContext

__version__ = importlib.metadata.version("flywheel")
__all__ = ["__version__", "hookimpl", "subscribe", "Caller", "Principal", "JobContext", "ApiError", "Conflict", "Forbidden",
           "InvalidInput", "NotFound", "Unavailable"]

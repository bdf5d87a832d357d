"""What `GET /v1/plugins` reports about each loaded plugin."""

from __future__ import annotations

import msgspec


class PluginRead(msgspec.Struct):
    name: str
    version: str
    hooks: list[str]
    builtin: bool = False


class MigrationSource(msgspec.Struct, kw_only=True):
    """A folder of plain SQL migrations in its own namespace.

    Files are named ``NNNN_description.sql`` and applied in order, one
    transaction each. `package` is an importable package holding the files (so
    they ship inside the plugin's wheel); `path` is a folder on disk instead.
    """

    namespace: str
    package: str | None = None
    path: str | None = None

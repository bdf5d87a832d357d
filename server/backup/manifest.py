"""`manifest.json`: what a backup holds and what a restore checks against.

Only settings that matter to a restore, never secrets: the store's kind
(not its URL, which may carry credentials), plugins and their versions,
applied migrations, Postgres and Flywheel versions, and a token that tells
whether a key is the one the secrets were sealed with (not the key).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

FORMAT = 1
MANIFEST_KEY = "manifest.json"
DUMP_KEY = "database.dump"
OBJECTS_PREFIX = "objects/"
SECRETS_NOTE = ("FLYWHEEL_SECRET_KEY is not in this backup: a restored server needs the same key "
                "to open the secrets plugins sealed (e.g. rlaas upstream API keys)")


class ObjectEntry(msgspec.Struct, frozen=True):
    key: str
    size: int
    sha256: str


class MigrationEntry(msgspec.Struct, frozen=True):
    namespace: str
    version: int
    name: str
    checksum: str


class PluginEntry(msgspec.Struct, frozen=True):
    name: str
    version: str


class DatabaseDump(msgspec.Struct, frozen=True):
    key: str
    size: int
    sha256: str
    server_version: str
    pg_dump_version: str


class Manifest(msgspec.Struct, frozen=True, kw_only=True):
    format: int = FORMAT
    flywheel_version: str
    created_at: datetime
    store_kind: Literal["file", "s3"]
    plugins: list[PluginEntry]
    migrations: list[MigrationEntry]
    database: DatabaseDump
    objects: list[ObjectEntry]
    secrets_included: bool = False
    secrets_note: str = SECRETS_NOTE
    # A token sealed with the server's key, for a restore to test its own key on (secret_check.py).
    secret_key_check: str | None = None

    @property
    def object_bytes(self) -> int:
        return sum(o.size for o in self.objects)


def encode(manifest: Manifest) -> bytes:
    return msgspec.json.format(msgspec.json.encode(manifest), indent=2) + b"\n"


def decode(data: bytes) -> Manifest:
    from flywheel.server.backup.errors import BackupRefused

    try:
        manifest = msgspec.json.decode(data, type=Manifest)
    except msgspec.DecodeError as exc:
        raise BackupRefused(f"{MANIFEST_KEY} is not a Flywheel backup manifest: {exc}") from None
    if manifest.format != FORMAT:
        raise BackupRefused(f"{MANIFEST_KEY} has format {manifest.format}; this release reads format {FORMAT}")
    return manifest

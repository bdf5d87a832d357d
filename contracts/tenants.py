"""Tenants and API keys."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec


class Scope(str, enum.Enum):
    """What a key may do. `admin` implies every scope; `write` implies `read`."""

    INGEST = "ingest"
    READ = "read"
    WRITE = "write"
    ADMIN = "admin"


Name = Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._-]*$")]


class TenantRead(msgspec.Struct):
    id: UUID
    name: str
    created_at: datetime


class ApiKeyCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: Name
    scopes: Annotated[list[Scope], msgspec.Meta(min_length=1)]


class ApiKeyRead(msgspec.Struct):
    id: UUID
    name: str
    prefix: str
    scopes: list[Scope]
    created_at: datetime
    revoked_at: datetime | None = None


class ApiKeyCreated(msgspec.Struct):
    """Returned once, when a key is created: `secret` is never shown again."""

    key: ApiKeyRead
    secret: str

"""The end user as the rlaas plugin stores it: a per-tenant hash, never the raw id.

The gateway hashes the OpenAI `user` field into an interaction's `subject_id`,
and `GET /v1/rlaas/interactions?user=...` hashes its filter the same way, so
a client filters by the id it knows while the tables never hold it. The
tenant id is part of the hash: one user id of two tenants gives two hashes,
so rows cannot be joined across tenants by user.
"""

from __future__ import annotations

import hashlib
from typing import Annotated
from uuid import UUID

import msgspec

HASH_CHARS = 32  # 128 bits: no collisions among any tenant's users, short enough for URLs and logs
UserHash = Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{32}$", description="An end user's hash (`users.py`).")]


def user_hash(tenant_id: UUID | str, user: str) -> str:
    """Hex SHA-256 of the tenant id's 16 bytes followed by `user` in UTF-8, first 32 characters."""
    tenant = tenant_id if isinstance(tenant_id, UUID) else UUID(str(tenant_id))
    return hashlib.sha256(tenant.bytes + user.encode("utf-8", "surrogatepass")).hexdigest()[:HASH_CHARS]

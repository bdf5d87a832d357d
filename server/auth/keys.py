"""API key format: ``fw_<prefix>_<secret>``.

The prefix (public, unique) finds the row; the secret (256 random bits) is
checked against its SHA-256 in constant time. The full key is shown once.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

_KEY = re.compile(r"^fw_([a-z0-9]{12})_([A-Za-z0-9_-]{43})$")


def new_key() -> tuple[str, str, bytes]:
    """A new key: (full key for the user, prefix, hash to store)."""
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    return f"fw_{prefix}_{secret}", prefix, hash_secret(secret)


def hash_secret(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def parse_key(key: str) -> tuple[str, str] | None:
    """(prefix, secret), or None if `key` is not shaped like a Flywheel key."""
    match = _KEY.match(key)
    return (match.group(1), match.group(2)) if match else None


def matches(secret: str, stored_hash: bytes) -> bool:
    return hmac.compare_digest(hash_secret(secret), stored_hash)

"""Secrets at rest: what plugins store encrypted (upstream API keys, tokens), with Fernet.

The key comes from FLYWHEEL_SECRET_KEY: one or more Fernet keys, comma-separated.
The first encrypts; every one decrypts, so a key is rotated by putting the new
one first and dropping the old one once nothing sealed with it is left. With the
variable unset, `<data_dir>/secret.key` is used when it exists, and created
(mode 0600) when Flywheel runs its own embedded services: `make up` needs no
setup, and a server pointed at shared Postgres never invents a key that its
other replicas would not have.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from flywheel.server.errors import Unavailable
from flywheel.server.settings import Settings, SettingsError

KEY_FILE = "secret.key"
MISSING = ("no secret key: set FLYWHEEL_SECRET_KEY to a Fernet key (generate one with "
           "`flywheel keys secret-key`) to store secrets")


class SecretBox:
    """Seal and open short secrets; `None` keys mean no key is configured."""

    def __init__(self, keys: list[bytes] | None) -> None:
        self._fernet = MultiFernet([Fernet(k) for k in keys]) if keys else None

    @property
    def ready(self) -> bool:
        return self._fernet is not None

    def seal(self, plaintext: str) -> str:
        if self._fernet is None:
            raise Unavailable(MISSING, code="secret_key_missing")
        return self._fernet.encrypt(plaintext.encode()).decode("ascii")

    def open(self, token: str) -> str:
        if self._fernet is None:
            raise Unavailable(MISSING, code="secret_key_missing")
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode()
        except (InvalidToken, UnicodeEncodeError):  # a token is url-safe base64: not ascii, not one
            # Never the token or any part of it in the message: it is the secret's ciphertext.
            raise Unavailable("a stored secret does not open with FLYWHEEL_SECRET_KEY (was the key rotated "
                              "without keeping the old one?)", code="secret_key_wrong") from None


def new_key() -> str:
    return Fernet.generate_key().decode("ascii")


def secret_box(settings: Settings, *, create: bool = True) -> SecretBox:
    """The box for these settings (a bad FLYWHEEL_SECRET_KEY is a SettingsError naming it).
    `create=False`: never make a key file, even embedded (backup and restore only read keys)."""
    if settings.secret_key:
        keys = [k.strip().encode() for k in settings.secret_key.split(",") if k.strip()]
        try:
            return SecretBox(keys)
        except (ValueError, TypeError):
            raise SettingsError("FLYWHEEL_SECRET_KEY", "expected Fernet keys (32 url-safe base64 bytes), "
                                "comma-separated") from None
    path = settings.data_path / KEY_FILE
    if path.exists():
        return SecretBox([path.read_bytes().strip()])
    if settings.embedded and create:
        return SecretBox([_create_key_file(path)])
    return SecretBox(None)


def ensure_key_file(data_path: Path) -> None:
    """Create `<data_dir>/secret.key` if it is missing: for a Flywheel that starts its own services.

    Called before the embedded services' URLs fill the settings (after that,
    `settings.embedded` no longer tells), so `make up` can seal secrets (the
    traces plugin's chain keys, a policy's API key) without any setup.
    """
    path = data_path / KEY_FILE
    if not path.exists():
        _create_key_file(path)


def _create_key_file(path: Path) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    key = new_key().encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process of this data dir made it first
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as f:
        f.write(key + b"\n")
    return key

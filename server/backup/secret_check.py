"""Whether the restoring server's FLYWHEEL_SECRET_KEY opens what the backed-up server sealed.

A backup never holds the key. Its manifest holds one Fernet token of a fixed phrase, sealed
with the backed-up server's key: it reveals neither the key nor any secret, and lets a
restore find a wrong or missing key before it writes anything. Without it the mistake shows
up later, as `secret_key_wrong` at an rlaas policy's first upstream call or a trace's
chain check.
"""

from __future__ import annotations

from flywheel.server.backup.errors import BackupRefused
from flywheel.server.backup.manifest import Manifest
from flywheel.server.errors import Unavailable
from flywheel.server.secrets import SecretBox, secret_box
from flywheel.server.settings import Settings, SettingsError

PHRASE = "flywheel backup: the secret key check"
FIX = ("set FLYWHEEL_SECRET_KEY to the backed-up server's key (or copy its <data_dir>/secret.key over "
       "FLYWHEEL_DATA_DIR's), or pass --without-secrets to restore anyway")
LOST = ("the secrets plugins sealed (rlaas upstream API keys, traces chain keys) stay unreadable until "
        "they are entered again")


def seal_check(settings: Settings) -> str | None:
    """The token for a backup's manifest; None when this server has no key (it sealed nothing)."""
    box = _box(settings)
    return box.seal(PHRASE) if box.ready else None


def check_key(settings: Settings, manifest: Manifest, *, without_secrets: bool = False) -> str | None:
    """A line to say once the key is known to fit; raise BackupRefused when it does not,
    unless `without_secrets` (then the line is a warning)."""
    if manifest.secret_key_check is None:
        return None  # made by a server without a key, or by a release before the check
    problem = _problem(_box(settings), manifest.secret_key_check)
    if problem is None:
        return "this server's secret key opens the backup's sealed secrets"
    if without_secrets:
        return f"warning: {problem}; restoring anyway (--without-secrets): {LOST}"
    raise BackupRefused(f"{problem}: {FIX}")


def _problem(box: SecretBox, token: str) -> str | None:
    if not box.ready:
        return "the backup's secrets were sealed with a secret key and this server has none"
    try:
        opened = box.open(token)
    except Unavailable:
        opened = None
    if opened != PHRASE:
        return ("this server's secret key (FLYWHEEL_SECRET_KEY, or <data_dir>/secret.key) does not open the "
                "backup's sealed secrets")
    return None


def _box(settings: Settings) -> SecretBox:
    try:
        return secret_box(settings, create=False)  # neither command makes a key file
    except SettingsError as exc:
        raise BackupRefused(str(exc)) from None

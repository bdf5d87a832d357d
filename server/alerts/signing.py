"""Webhook signatures: HMAC-SHA256 over "<timestamp>.<body>", sent as
`Flywheel-Signature: t=<unix seconds>,v1=<hex>` (the scheme Stripe made familiar).

The timestamp is inside the MAC so a receiver can refuse old replays; the
delivery id (`Flywheel-Delivery`, also in the body) lets it drop a retry it
has already handled.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

SIGNATURE_HEADER = "Flywheel-Signature"
SECRET_PREFIX = "whsec_"


def new_webhook_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return mac.hexdigest()


def signature_header(secret: str, body: bytes, timestamp: int | None = None) -> str:
    t = int(time.time()) if timestamp is None else timestamp
    return f"t={t},v1={signature(secret, t, body)}"


def verify(secret: str, header: str, body: bytes, *, tolerance_s: int = 300, now: float | None = None) -> bool:
    """True when `header` signs `body` with `secret` within `tolerance_s` of `now`
    (what a receiver runs; Flywheel's tests use it too)."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        t = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - t) > tolerance_s:
        return False
    return hmac.compare_digest(fields.get("v1", ""), signature(secret, t, body))

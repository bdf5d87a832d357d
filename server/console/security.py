"""What keeps console forms and redirects safe: same-origin writes, local `next`.

Cross-site request forgery needs two defences to fail: the session cookie is
SameSite=Strict (browsers do not send it with requests started by another
site), and every unsafe request must carry an Origin (or, failing that, a
Referer) naming this host. Requests with neither are refused: every browser
that supports SameSite sends Origin on POST.
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit

from litestar.connection import ASGIConnection

from flywheel.server.console.sessions import COOKIE_PATH

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
LOGIN = f"{COOKIE_PATH}/login"
HOME = f"{COOKIE_PATH}/"

# Sent with every console response: no framing, no foreign scripts or styles,
# forms only to this origin, nothing cached.
SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'none'; style-src 'self'; img-src 'self' data:; "
                                "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def same_origin(connection: ASGIConnection) -> bool:
    """Whether an unsafe request comes from a page of this host.

    Only the host and port are compared, not the scheme: behind a proxy that
    ends TLS the app sees http while the browser says https.
    """
    headers = connection.headers
    source = headers.get("origin")
    if source is None or source == "null":
        source = headers.get("referer")
    host = headers.get("host")
    if not source or not host:
        return False
    try:
        parts = urlsplit(source)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and parts.netloc.lower() == host.lower()


def safe_next(target: str | None) -> str | None:
    """`target` if it is a path inside the console, else None (no open redirects)."""
    if not target or len(target) > 2000 or any(ord(c) < 0x21 or c == "\\" for c in target):
        return None
    try:
        parts = urlsplit(target)
    except ValueError:
        return None
    if parts.scheme or parts.netloc or target.startswith("//"):
        return None
    path = parts.path
    if path != COOKIE_PATH and not path.startswith(f"{COOKIE_PATH}/"):
        return None
    if path == LOGIN or path.startswith(f"{LOGIN}/") or ".." in path.split("/"):
        return None
    return target


def login_url(next_target: str | None) -> str:
    target = safe_next(next_target)
    return f"{LOGIN}?next={quote(target, safe='/')}" if target and target not in (HOME, COOKIE_PATH) else LOGIN

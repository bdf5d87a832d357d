"""Console authentication: a session cookie instead of an API key.

The API-key middleware lets ``/console`` through; this one, on the console's
router, checks the origin of unsafe requests and then the session. A page
that needs a session and has none answers 303 to the sign-in page. With a
session, ``request.user`` is the same `Principal` an API handler gets (the
session's tenant and key), so the app's scope guard and the `principal`
dependency work unchanged.
"""

from __future__ import annotations

import asyncpg
from litestar.connection import ASGIConnection
from litestar.types import ASGIApp, Receive, Scope, Send

from flywheel.server.console.security import UNSAFE_METHODS, login_url, same_origin
from flywheel.server.console.sessions import COOKIE, COOKIE_PATH, find_session
from flywheel.server.errors import Forbidden, Unavailable

PUBLIC = "public"


class CrossSiteRequest(Forbidden):
    code = "cross_site_request"


def console_auth_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        connection = ASGIConnection(scope)
        if scope["method"] in UNSAFE_METHODS and not same_origin(connection):
            raise CrossSiteRequest("this form was sent from another site (or without an Origin header); "
                                   "reload the page and try again")
        # OPTIONS reveals nothing but the allowed methods, as on the API.
        if scope["route_handler"].opt.get(PUBLIC) or scope["method"] == "OPTIONS":
            await app(scope, receive, send)
            return
        cookie = connection.cookies.get(COOKIE)
        try:
            session = await find_session(connection.app.state.flywheel.db, cookie)
        except (OSError, TimeoutError, asyncpg.InterfaceError, asyncpg.PostgresConnectionError) as exc:
            raise Unavailable("the console cannot reach its database; retry shortly",
                              headers={"Retry-After": "2"}) from exc
        if session is None:
            await _to_login(scope, send, clear_cookie=cookie is not None)
            return
        scope["user"] = session.principal
        scope["auth"] = session
        await app(scope, receive, send)

    return middleware


async def _to_login(scope: Scope, send: Send, *, clear_cookie: bool) -> None:
    target = None
    if scope["method"] in ("GET", "HEAD"):
        query = scope.get("query_string", b"").decode("latin-1")
        # raw_path: the path as the browser sent it (Litestar's scope["path"] drops a trailing slash).
        path = scope.get("raw_path", b"").decode("latin-1") or scope["path"]
        target = path + (f"?{query}" if query else "")
    headers = [(b"location", login_url(target).encode("latin-1")), (b"content-length", b"0"),
               (b"cache-control", b"no-store")]
    if clear_cookie:  # expired or revoked: drop it so the browser stops sending it
        headers.append((b"set-cookie", f"{COOKIE}=; Path={COOKIE_PATH}; Max-Age=0; HttpOnly; SameSite=Strict"
                        .encode("latin-1")))
    await send({"type": "http.response.start", "status": 303, "headers": headers})
    await send({"type": "http.response.body", "body": b""})

"""Authentication (Bearer API keys) and the scope guard.

Every route needs a key unless its handler sets ``opt={"public": True}``;
console pages (``opt={"console": True}``, set by the console's router) use a
session cookie instead. The scope a route needs comes from
``opt={"scope": ...}``, else from its method: GET needs `read`, anything
else `write`.
"""

from __future__ import annotations

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from litestar.types import Receive, Send
from litestar.types import Scope as AsgiScope

from flywheel.contracts.tenants import Scope
from flywheel.server.auth.principal import Principal
from flywheel.server.errors import Forbidden, Unauthorized

PUBLIC = "public"
CONSOLE = "console"


class ApiKeyAuthentication(AbstractAuthenticationMiddleware):
    async def __call__(self, scope: AsgiScope, receive: Receive, send: Send) -> None:
        # Console pages (opt "console") authenticate by session cookie, on their own router.
        handler = scope.get("route_handler")
        if handler is not None and handler.opt.get(CONSOLE):
            await self.app(scope, receive, send)
            return
        await super().__call__(scope, receive, send)

    async def authenticate_request(self, connection: ASGIConnection) -> AuthenticationResult:
        header = connection.headers.get("authorization", "")
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise Unauthorized("send an API key as 'Authorization: Bearer <key>'",
                               headers={"WWW-Authenticate": "Bearer"})
        state = connection.app.state.flywheel
        principal = await state.keys.resolve(state.db, key.strip())
        if principal is None:
            raise Unauthorized("invalid or revoked API key", headers={"WWW-Authenticate": "Bearer"})
        return AuthenticationResult(user=principal, auth=principal.key_id)


def required_scope(handler: BaseRouteHandler, method: str) -> Scope:
    scope = handler.opt.get("scope")
    if scope is not None:
        return Scope(scope)
    return Scope.READ if method in ("GET", "HEAD") else Scope.WRITE


async def scope_guard(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
    # async: Litestar runs sync guards in a thread pool, a thread hop per request.
    # OPTIONS (Litestar's automatic CORS/allow handler) carries no key and reveals no data.
    if handler.opt.get(PUBLIC) or connection.scope.get("method") == "OPTIONS":
        return
    principal: Principal = connection.user
    needed = required_scope(handler, connection.scope.get("method", "GET"))
    if not principal.allows(needed):
        raise Forbidden(f"this key lacks the '{needed.value}' scope")


def provide_principal(request: ASGIConnection) -> Principal:
    return request.user

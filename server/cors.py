"""CORS for browser clients (the TypeScript SDK in a web page on another origin).

Off unless `FLYWHEEL_CORS_ORIGINS` names the origins. API keys travel in the
`Authorization` header, never in cookies, so credentials are never allowed:
a page of an allowed origin can call the API with a key it holds, and no
page can ride a console session cookie.

The fast paths (ingest, plugin hot routes) answer in front of Litestar, where
its CORS middleware does not run; with CORS on they leave any request that
carries an `Origin` header to Litestar (server/ingest/fastpath.py,
server/fast_routes.py), so a browser always gets its headers.
"""

from __future__ import annotations

from litestar.config.cors import CORSConfig

from flywheel.server.settings import Settings

# What the SDKs send: the key, JSON or gzip bodies, and a batch's idempotency key.
ALLOW_HEADERS = ["Authorization", "Content-Type", "Content-Encoding", "Idempotency-Key"]
# What a client may read back: when to retry, and which interaction an answer was.
EXPOSE_HEADERS = ["Retry-After", "Idempotent-Replayed", "X-Flywheel-Interaction-Id"]


def cors_config(settings: Settings) -> CORSConfig | None:
    if not settings.cors_origins:
        return None
    return CORSConfig(allow_origins=list(settings.cors_origins), allow_methods=["GET", "POST", "PUT", "PATCH",
                                                                                "DELETE"],
                      allow_headers=ALLOW_HEADERS, expose_headers=EXPOSE_HEADERS, allow_credentials=False,
                      max_age=600)

"""Errors on console pages are pages: the same status and message as the API's JSON body, in HTML.

The app's exception handlers are wrapped once: below ``/console`` the JSON
handler still decides status and message (and logs 5xx), then the answer is
rendered with ``console/error.html``. A 401 there means the session is gone:
back to the sign-in page.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import structlog
from litestar import Request, Response
from litestar.response import Redirect

from flywheel.server.console.security import SECURITY_HEADERS, login_url
from flywheel.server.console.sessions import COOKIE_PATH

log = structlog.get_logger("flywheel.console")

TITLES = {400: "Bad request", 401: "Signed out", 403: "Not allowed", 404: "Not found", 405: "Not allowed",
          409: "Conflict", 413: "Too large", 422: "Invalid input", 500: "Something went wrong",
          503: "Unavailable"}


def is_console_path(path: str) -> bool:
    return path == COOKIE_PATH or path.startswith(f"{COOKIE_PATH}/")


def with_html_errors(handlers: Mapping[Any, Callable[[Request, Exception], Response]]) -> dict[Any, Any]:
    """The same handlers, answering in HTML for console paths."""

    def wrap(api_handler: Callable[[Request, Exception], Response]):
        def handler(request: Request, exc: Exception) -> Response:
            answer = api_handler(request, exc)
            if not is_console_path(request.url.path):
                return answer
            return html_error(request, answer)

        return handler

    return {key: wrap(handler) for key, handler in handlers.items()}


def html_error(request: Request, answer: Response) -> Response:
    body = answer.content
    status = answer.status_code
    if status == 401:
        return Redirect(login_url(None), status_code=303, headers={"Cache-Control": "no-store"})
    message = getattr(body, "message", None) or TITLES.get(status, "Error")
    headers = {k: v for k, v in (answer.headers or {}).items() if k.lower() in ("allow", "retry-after")}
    try:
        env = request.app.template_engine.engine
        html = env.get_template("console/error.html").render(
            request=request, status=status, title=TITLES.get(status, "Error"), message=message,
            field=getattr(body, "field", None))
    except Exception:  # a broken template must not hide the original error
        log.exception("console error page failed to render", status=status)
        html = f"<!doctype html><title>{status}</title><h1>{status}</h1><p>{TITLES.get(status, 'Error')}</p>"
    return Response(content=html, status_code=status, media_type="text/html",
                    headers={**SECURITY_HEADERS, **headers})

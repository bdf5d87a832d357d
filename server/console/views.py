"""The console's own pages: sign-in, sign-out and the overview."""

from __future__ import annotations

from urllib.parse import quote

from litestar import Request, Response, get, post
from litestar.datastructures import Cookie, State
from litestar.response import Redirect, Template

from flywheel.contracts.tenants import Scope
from flywheel.server.auth.principal import Caller
from flywheel.server.console.ratelimit import client_address, sign_in_limiter
from flywheel.server.console.security import HOME, safe_next
from flywheel.server.console.sessions import (
    COOKIE,
    COOKIE_PATH,
    LIFETIME,
    check_key,
    close_session,
    find_session,
    open_session,
)
from flywheel.server.console.templating import console_session

PUBLIC = {"public": True}

_FAMILIES = """
SELECT v.family, count(*) AS versions, max(v.version) AS latest,
       max(v.version) FILTER (WHERE v.state = 'ready') AS latest_ready,
       a.version AS active, a.activated_at
FROM model_versions v
LEFT JOIN active_models a ON a.tenant_id = v.tenant_id AND a.family = v.family
WHERE v.tenant_id = $1
GROUP BY v.family, a.version, a.activated_at
"""
_JOBS = """
SELECT id, name, state, created_at, started_at, finished_at, error
FROM jobs WHERE tenant_id = $1 ORDER BY created_at DESC, id DESC LIMIT 15
"""
_JOB_STATES = """
SELECT state, count(*) AS n FROM jobs
WHERE tenant_id = $1 AND created_at > now() - interval '7 days' GROUP BY state
"""


def _session_cookie(request: Request, value: str, max_age: int) -> Cookie:
    return Cookie(key=COOKIE, value=value, path=COOKIE_PATH, max_age=max_age, httponly=True, samesite="strict",
                  secure=request.url.scheme == "https")


def _location(target: str) -> str:
    # `target` passed safe_next; quoting keeps any non-ASCII path legal in a header.
    return quote(target, safe="/?=&%:+,;@-._~!$'()*")


@get("/login", opt=PUBLIC, name="console:login-form")
async def login_form(request: Request, state: State) -> Response:
    target = safe_next(request.query_params.get("next"))
    if await find_session(state.flywheel.db, request.cookies.get(COOKIE)):
        return Redirect(_location(target or HOME), status_code=303)
    return Template("console/login.html", context={"next": target or "", "error": None})


@post("/login", opt=PUBLIC, name="console:login", status_code=303)
async def login(request: Request, state: State) -> Response:
    form = await request.form()
    key = str(form.get("key") or "").strip()
    target = safe_next(str(form.get("next") or "")) or HOME
    # Failed sign-ins are limited per client address and per key prefix
    # (server/console/ratelimit.py). The address is the ASGI peer: Flywheel
    # does not trust X-Forwarded-For, which any client can write.
    attempt = await sign_in_limiter(state.flywheel).begin(
        client_address(request.client.host if request.client else None), key)
    if attempt.retry_after is not None:  # refused without looking at the key, right or wrong
        error = (f"Too many sign-in attempts failed. Wait {attempt.retry_after} seconds, "
                 "then try again.")
        return Template("console/login.html", context={"next": target, "error": error},
                        status_code=429, headers={"Retry-After": str(attempt.retry_after)})
    principal = await check_key(state.flywheel.db, key) if key else None
    error = None
    if principal is None:
        error = "That key was not accepted: it is unknown, revoked or mistyped."
    else:
        await attempt.release()  # a genuine key is not a guess, whatever its scopes
        if not principal.allows(Scope.READ):
            error = "That key cannot open the console: it lacks the 'read' scope."
    if error:
        return Template("console/login.html", context={"next": target, "error": error}, status_code=401,
                        headers={"WWW-Authenticate": 'Bearer realm="flywheel"'})
    await close_session(state.flywheel.db, request.cookies.get(COOKIE))  # never reuse an old id
    session_id = await open_session(state.flywheel.db, principal)
    return Redirect(_location(target), status_code=303,
                    cookies=[_session_cookie(request, session_id, int(LIFETIME.total_seconds()))])


@post("/logout", opt=PUBLIC, name="console:logout", status_code=303)
async def logout(request: Request, state: State) -> Redirect:
    await close_session(state.flywheel.db, request.cookies.get(COOKIE))
    return Redirect(f"{COOKIE_PATH}/login", status_code=303, cookies=[_session_cookie(request, "", 0)])


@get("/", name="console:home")
async def home(request: Request, state: State, principal: Caller) -> Template:
    fw = state.flywheel
    db = fw.db
    families = {r["family"]: r for r in await db.fetch(_FAMILIES, principal.tenant_id)}
    models = []
    for name in sorted(set(fw.contributions.model_families) | set(families)):
        owner = fw.contributions.model_families.get(name, ("?", None))[0]
        models.append({"family": name, "plugin": owner, "row": families.get(name)})
    jobs = await db.fetch(_JOBS, principal.tenant_id)
    states = {r["state"]: r["n"] for r in await db.fetch(_JOB_STATES, principal.tenant_id)}
    job_states = {s: states.get(s, 0) for s in ("queued", "running", "succeeded", "failed", "cancelled")}
    return Template("console/home.html", context={
        "session": console_session(request), "plugins": fw.pm.describe(), "models": models, "jobs": jobs,
        "job_states": job_states})

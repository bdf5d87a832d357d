"""Fixtures for testing Flywheel plugins against real Postgres and Redis.

Installed with Flywheel as a pytest plugin. In your plugin's tests::

    import pytest

    @pytest.fixture(scope="session")
    def flywheel_plugins():
        import my_plugin
        return [my_plugin]          # default: every installed plugin

    async def test_my_route(client, tenant):
        r = await client.get("/v1/my-plugin/things", headers=tenant.headers)
        assert r.status_code == 200

Fixtures: `flywheel_settings`, `app`, `client` (an httpx client calling the app in-process),
`database` (the asyncpg pool), `state`, `worker` (run queued jobs now),
`tenant` and `make_tenant` (a tenant with an admin key). All are
session-scoped except `tenant`, so tests share one app; isolate tests by
tenant, which is what Flywheel does in production too.

For console pages: `console_client` (``async with console_client(tenant.key) as c``:
an in-process client signed in to the console), `live_server` (a second app
instance on a real port, ``live_server.url``), and `browser` / `page`
(headless Chromium through Playwright; skipped only when /usr/bin/chromium
is absent)::

    async def test_my_page(live_server, page, tenant):
        from flywheel.server.testing.browser import sign_in

        await sign_in(page, live_server.url, tenant.key)
        await page.click("nav >> text=My page")
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import pytest
import pytest_asyncio

from flywheel.contracts.tenants import Scope


@dataclass
class TestTenant:
    id: UUID
    name: str
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def flywheel_services(tmp_path_factory) -> AsyncIterator[Any]:
    """Postgres and Redis for this session (local ones when they answer, else embedded)."""
    from flywheel.server.testing.services import TestServices

    services = TestServices(tmp_path_factory.mktemp("flywheel-services"))
    await services.start()
    try:
        yield services
    finally:
        await services.stop()


@pytest.fixture(scope="session")
def flywheel_plugins() -> list[Any] | None:
    """Plugins the test app loads. None: every installed `flywheel.plugins` entry point."""
    return None


@pytest.fixture(scope="session")
def flywheel_settings(flywheel_services, tmp_path_factory):
    from flywheel.server.secrets import KEY_FILE, new_key
    from flywheel.server.settings import load_settings

    data = tmp_path_factory.mktemp("flywheel-data")
    # A throwaway secret key where Flywheel looks when FLYWHEEL_SECRET_KEY is unset, so plugins
    # that seal secrets work, in the app and in CLI commands run with FLYWHEEL_DATA_DIR=data.
    (data / KEY_FILE).write_text(new_key() + "\n")
    (data / KEY_FILE).chmod(0o600)
    return load_settings({}, database_url=flywheel_services.database_url, redis_url=flywheel_services.redis_url,
                         store_url=f"file://{data / 'store'}", data_dir=str(data),
                         queue_name=f"flywheel-test:{uuid.uuid4().hex[:8]}",
                         # `client` calls the app as http://testserver; live servers listen on 127.0.0.1.
                         allowed_hosts=["testserver", "127.0.0.1", "localhost"])


@pytest.fixture(scope="session")
def app(flywheel_settings, flywheel_plugins):
    from flywheel.server.app import create_app

    if flywheel_plugins is None:
        return create_app(flywheel_settings, load_entrypoints=True)
    return create_app(flywheel_settings, flywheel_plugins)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def client(app) -> AsyncIterator[Any]:
    """An httpx client calling `app` in-process; the app's startup (migrations
    included) runs first. It runs on the test's own event loop, so tests may
    use `database` and `state` beside it."""
    from flywheel.server.testing.client import app_client

    async with app_client(app) as c:
        yield c


@pytest.fixture(scope="session")
def state(app, client):
    """The app's AppState, started (connections open, migrations applied)."""
    return app.state.flywheel


@pytest.fixture(scope="session")
def database(state):
    """The app's asyncpg pool."""
    return state.db


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def worker(state):
    """Call ``await worker()`` to run every job that is due to completion (a burst worker).

    A job deferred to later (`_defer_by`: an alert delivery's retry in 30 s, say) stays
    queued for a later call rather than holding the test for its delay, unless
    ``await worker(wait_deferred=True)``: then the burst waits for those too, as ARQ's
    own burst mode does.

    Cron entries do not tick in it: ARQ would queue a tick that falls during a burst (for
    every tenant) and leave it to the next test's call. A test of a cron's job queues or
    runs that job itself.
    """
    from flywheel.server.jobs.worker import build_worker

    async def run(*, wait_deferred: bool = False) -> None:
        w = build_worker(state, burst=True, handle_signals=False, poll_delay=0.05)
        w.cron_jobs = []  # their functions stay registered: a tick queued elsewhere still runs
        if not wait_deferred:
            _count_due_jobs_only(w)
        try:
            await w.main()
        finally:
            await w.close()

    return run


def _count_due_jobs_only(w: Any) -> None:
    """ARQ's burst loop stops when `zcard(queue)` is 0; make it count the jobs due now."""
    import time

    pool, queue = w.pool, w.queue_name
    zcard = pool.zcard

    async def due(name: str) -> int:
        if name != queue:
            return await zcard(name)
        return await pool.zcount(name, "-inf", int(time.time() * 1000))

    pool.zcard = due


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def make_tenant(state):
    """``await make_tenant(scopes=[...])``: a fresh tenant with a key of those scopes."""
    from flywheel.server.auth import service

    async def make(name: str | None = None, scopes: list[Scope] | None = None) -> TestTenant:
        tenant = await service.create_tenant(state.db, name or f"t-{uuid.uuid4().hex[:10]}")
        created = await service.create_key(state.db, tenant.id, "test", scopes or [Scope.ADMIN])
        return TestTenant(id=tenant.id, name=tenant.name, key=created.secret)

    return make


@pytest_asyncio.fixture(loop_scope="session")
async def tenant(make_tenant) -> TestTenant:
    """A fresh tenant with an admin key, for one test."""
    return await make_tenant()


# ---------------------------------------------------------------------------
# Console: in-process sessions, a real HTTP server, a real browser.
# ---------------------------------------------------------------------------


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def console_client(app, client):
    """``async with console_client(key) as c:`` an httpx client for `app` with its own
    cookies, signed in to the console with `key` (None: signed out)."""
    from flywheel.server.testing.console import console_client as make

    return lambda key=None, **options: make(app, key, **options)


@pytest.fixture(scope="session")
def live_server(flywheel_settings, flywheel_plugins, client):
    """Another instance of the app (same plugins, same database) served over real
    HTTP on a free port: ``live_server.url``. For browsers and other processes."""
    from flywheel.server.app import create_app
    from flywheel.server.testing.live import LiveServer

    if flywheel_plugins is None:
        live_app = create_app(flywheel_settings, load_entrypoints=True)
    else:
        live_app = create_app(flywheel_settings, flywheel_plugins)
    with LiveServer(live_app) as live:
        yield live


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser():
    """Headless Chromium (Playwright's async API) on the system's /usr/bin/chromium."""
    from flywheel.server.testing.browser import chromium_missing, launch_chromium

    reason = chromium_missing()
    if reason:
        pytest.skip(reason)
    try:
        import playwright  # noqa: F401
    except ImportError:
        pytest.fail("playwright is not installed: pip install 'flywheel[test]'")
    async with launch_chromium() as b:
        yield b


@pytest_asyncio.fixture(loop_scope="session")
async def page(browser):
    """A fresh browser page (its own cookies) for one test."""
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    tab = await context.new_page()
    try:
        yield tab
    finally:
        await context.close()

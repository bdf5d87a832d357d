"""Schemathesis against the app's own OpenAPI document, over every route.

The schema is read from the running app, so routes added later (core or
plugins) are fuzzed too. Checks: no 5xx, and every response matches what the
document says (bodies of errors included).
"""

from __future__ import annotations

import re
import uuid

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from flywheel.contracts.tenants import Scope
from flywheel.server.app import create_app
from flywheel.server.testing.live import LiveServer


@pytest.fixture(scope="session")
def live_api(flywheel_settings):
    """A separate app instance on a real port, with its own admin key."""
    app = create_app(flywheel_settings, load_entrypoints=True)
    with LiveServer(app) as live:
        yield live.url, live.run(_admin_headers(app))


async def _admin_headers(app) -> dict[str, str]:
    from flywheel.server.auth import service

    db = app.state.flywheel.db
    tenant = await service.create_tenant(db, f"fuzz-{uuid.uuid4().hex[:8]}")
    key = await service.create_key(db, tenant.id, "fuzz", [Scope.ADMIN])
    return {"Authorization": f"Bearer {key.secret}"}


@pytest.fixture(scope="session")
def api_schema(live_api):
    url, _ = live_api
    return schemathesis.openapi.from_url(f"{url}/schema/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


@schemathesis.check
def validation_errors_are_422(ctx, response, case):
    """Every validation error, wherever it is raised (Litestar or a handler), is one status: 422."""
    if response.status_code >= 400 and "json" in (response.headers.get("content-type") or [""])[0]:
        body = response.json()
        if isinstance(body, dict) and body.get("code") == "validation_error":
            assert response.status_code == 422, f"validation_error answered {response.status_code}"
    return None


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_api_conforms_to_its_schema(case, live_api):
    url, headers = live_api
    case.call_and_validate(base_url=url, headers=headers,
                           checks=[not_a_server_error, response_schema_conformance, validation_errors_are_422])


def test_schema_covers_every_route(api_schema, app):
    from litestar.routes import HTTPRoute

    documented = set(api_schema.raw_schema["paths"])
    # Console pages (HTML, signed in by cookie; opt "console") are not part of the API.
    routes = {re.sub(r"\{(\w+):\w+\}", r"{\1}", r.path) for r in app.routes
              if isinstance(r, HTTPRoute) and not r.path.startswith("/schema") and r.path != "/metrics"
              and not all(h.opt.get("console") for h in r.route_handlers)}
    assert len(routes) >= 8 and routes <= documented, routes - documented
    assert not [p for p in documented if p.startswith("/console")], "console pages must stay out of the API schema"

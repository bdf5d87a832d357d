"""A plugin with console pages, written the way a plugin author would (tests only).

Its pages show the signed-in tenant's API keys: a list with charts, a detail
page per key (not in the navigation), and a form that needs the `write`
scope. This package also holds its templates (``demo/keys.html``, ...).
"""

from __future__ import annotations

from collections import Counter
from uuid import UUID

from litestar import Controller, get, post
from litestar.datastructures import State
from litestar.params import FromPath
from litestar.response import Redirect, Template

from flywheel.contracts.pages import Page
from flywheel.server import Caller, NotFound, hookimpl

_KEYS = "SELECT id, name, prefix, scopes, created_at, revoked_at FROM api_keys WHERE tenant_id = $1"


async def keys_page(state: State, principal: Caller) -> Template:
    rows = await state.flywheel.db.fetch(f"{_KEYS} ORDER BY created_at, id", principal.tenant_id)
    by_scope = Counter(scope for r in rows for scope in r["scopes"])
    per_day = Counter(r["created_at"].date() for r in rows)
    return Template("demo/keys.html", context={
        "keys": rows,
        "by_scope": {s: by_scope.get(s, 0) for s in ("ingest", "read", "write", "admin")},
        "per_day": {"keys created": sorted(per_day.items()), "names longer than 4": sorted(
            Counter(r["created_at"].date() for r in rows if len(r["name"]) > 4).items())},
        "name_lengths": [len(r["name"]) for r in rows],
    })


class KeyPages(Controller):
    path = "/demo/keys"

    @get("/{key_id:uuid}", name="demo:key")
    async def key_page(self, state: State, principal: Caller, key_id: FromPath[UUID]) -> Template:
        row = await state.flywheel.db.fetchrow(f"{_KEYS} AND id = $2", principal.tenant_id, key_id)
        if row is None:
            raise NotFound("no such key")
        return Template("demo/key.html", context={"key": row})

    @post("/{key_id:uuid}/touch", name="demo:touch", status_code=303)
    async def touch(self, state: State, principal: Caller, key_id: FromPath[UUID]) -> Redirect:
        """A form that needs the `write` scope (the default for POST), like an API route."""
        row = await state.flywheel.db.fetchrow(f"{_KEYS} AND id = $2", principal.tenant_id, key_id)
        if row is None:
            raise NotFound("no such key")
        return Redirect(f"/console/demo/keys/{key_id}?touched=1", status_code=303)


async def broken_page() -> Template:
    return Template("demo/no-such-template.html")


class DemoPlugin:
    __flywheel_plugin_name__ = "demo"

    @hookimpl
    def register_pages(self):
        return [
            Page(path="/demo", nav_title="Demo keys", handler=keys_page, order=10, templates=__name__),
            Page(path="/demo/keys/{key_id:uuid}", nav_title="Key", handler=KeyPages, nav=False),
            Page(path="/demo/broken", nav_title="Broken", handler=broken_page, nav=False),
        ]

"""Console pages for the tenant's API keys: list, create (the secret shown once), revoke.

Like `/v1/keys`, every page here needs the `admin` scope. A new key's secret
is in the answer to the form that created it and nowhere else: it is not
stored, not put in a redirect, and the list never shows it.
"""

from __future__ import annotations

from urllib.parse import urlencode
from uuid import UUID

import msgspec
from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.params import FromPath
from litestar.response import Redirect, Template

from flywheel.contracts.tenants import ApiKeyCreate, ApiKeyCreated, Scope
from flywheel.server.auth import service
from flywheel.server.auth.principal import Caller, Principal
from flywheel.server.console.templating import console_session

ADMIN = {"scope": "admin"}


async def keys_context(state: State, principal: Principal, request: Request) -> dict:
    keys = await service.list_keys(state.flywheel.db, principal.tenant_id)
    session = console_session(request)
    named = request.query_params.get("revoked")
    return {"active": [k for k in keys if k.revoked_at is None], "revoked": [k for k in keys if k.revoked_at],
            "scopes": [s.value for s in Scope], "current_key": session.key_id if session else None,
            "created": None, "error": None, "form": {"name": "", "scopes": ["read"]},
            # Named by the redirect after a revocation; shown only if that key is revoked indeed.
            "revoked_name": next((k.name for k in keys if k.revoked_at and k.name == named), None)}


def parse_create_form(form) -> ApiKeyCreate:
    """The form's fields as the API's body; msgspec's message names the field at fault."""
    raw = {"name": str(form.get("name") or "").strip(), "scopes": form.getall("scopes", [])}
    return msgspec.convert(raw, ApiKeyCreate)


class KeyPages(Controller):
    path = "/keys"

    @get("/", name="console:keys", opt=ADMIN)
    async def keys(self, request: Request, state: State, principal: Caller) -> Template:
        return Template("console/keys.html", context=await keys_context(state, principal, request))

    @post("/", name="console:key-create", status_code=201, opt=ADMIN)
    async def create(self, request: Request, state: State, principal: Caller) -> Template:
        form = await request.form()
        try:
            data = parse_create_form(form)
        except msgspec.ValidationError as exc:
            context = await keys_context(state, principal, request)
            context["error"] = f"The key was not created: {exc}"
            context["form"] = {"name": str(form.get("name") or ""), "scopes": form.getall("scopes", [])}
            return Template("console/keys.html", context=context, status_code=422)
        created: ApiKeyCreated = await service.create_key(state.flywheel.db, principal.tenant_id, data.name,
                                                          data.scopes)
        context = await keys_context(state, principal, request)
        context["created"] = created
        return Template("console/keys.html", context=context, status_code=201)

    @post("/{key_id:uuid}/revoke", name="console:key-revoke", status_code=303, opt=ADMIN)
    async def revoke(self, state: State, principal: Caller, key_id: FromPath[UUID]) -> Redirect:
        revoked = await service.revoke_key(state.flywheel.db, principal.tenant_id, key_id)
        state.flywheel.keys.forget()  # as the API does: a revoked key stops working on this replica at once
        return Redirect(f"/console/keys?{urlencode({'revoked': revoked.name})}", status_code=303)

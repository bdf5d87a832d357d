"""`POST /v1/events`, `GET /v1/events` and the tenant's PII allow-list and settings."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec
from litestar import Controller, Request, get, post, put
from litestar.datastructures import State
from litestar.params import FromQuery, JSONBody, QueryParameter

from flywheel.contracts.events import EventPage, EventRecord, IngestResult
from flywheel.contracts.pii import PiiAllowList, PiiSettings, validate_allow_list
from flywheel.server.auth.principal import Caller
from flywheel.server.errors import InvalidInput
from flywheel.server.ingest.pii import validate_settings
from flywheel.server.pagination import decode_cursor, encode_cursor


class EventController(Controller):
    path = "/v1/events"
    tags = ["events"]

    # Events are checked one by one (server/ingest/service.py), so one bad event rejects only itself.
    @post("/", operation_id="ingestEvents", status_code=200,
          opt={"scope": "ingest", "own_body_checks": True, "openapi_body": "events",
               "errors": {415: "a Content-Type other than JSON, NDJSON or msgpack"}})
    async def ingest(self, request: Request, state: State, principal: Caller) -> IngestResult:
        """Store a batch of events of any registered type.

        Body: a JSON array of events (`application/json`), one event per line
        (`application/x-ndjson`) or a msgpack array (`application/msgpack`),
        optionally gzip-compressed (`Content-Encoding: gzip`). Each event is
        accepted, a duplicate (its `event_id` was stored before), or rejected
        with its index, error code and field. The answer comes once accepted
        events are durable.
        """
        body = await request.body()
        return await state.flywheel.ingestor.ingest(
            principal.tenant_id, body, request.headers.get("content-type"), request.headers.get("content-encoding"))

    @get("/", operation_id="listEvents")
    async def list_events(
        self, state: State, principal: Caller,
        type: FromQuery[str | None] = None,
        since: FromQuery[datetime | None] = None,
        until: FromQuery[datetime | None] = None,
        subject_id: FromQuery[str | None] = None,
        session_id: FromQuery[str | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
        cursor: FromQuery[str | None] = None,
    ) -> EventPage:
        """The tenant's events, newest first; `since` inclusive, `until` exclusive."""
        for name, value in (("since", since), ("until", until)):
            if value is not None and value.tzinfo is None:
                raise InvalidInput("timestamps need a timezone (e.g. 2026-01-02T00:00:00Z)", field=f"query.{name}")
        after = decode_cursor(cursor, datetime, UUID) if cursor else None
        rows = await state.flywheel.db.fetch(
            """SELECT event_id, type, ts, subject_id, session_id, received_at, body FROM events
               WHERE tenant_id = $1
                 AND ($2::text IS NULL OR type = $2)
                 AND ($3::timestamptz IS NULL OR (ts >= $3 AND day >= ($3 AT TIME ZONE 'UTC')::date))
                 AND ($4::timestamptz IS NULL OR (ts < $4 AND day <= ($4 AT TIME ZONE 'UTC')::date))
                 AND ($5::text IS NULL OR subject_id = $5)
                 AND ($6::text IS NULL OR session_id = $6)
                 AND ($7::timestamptz IS NULL OR (ts, event_id) < ($7, $8))
               ORDER BY ts DESC, event_id DESC LIMIT $9""",
            principal.tenant_id, type, since, until, subject_id, session_id,
            after[0] if after else None, after[1] if after else None, limit + 1)
        items = [EventRecord(event_id=r["event_id"], type=r["type"], ts=r["ts"], subject_id=r["subject_id"],
                             session_id=r["session_id"], received_at=r["received_at"], event=r["body"])
                 for r in rows[:limit]]
        next_cursor = encode_cursor(items[-1].ts, items[-1].event_id) if len(rows) > limit else None
        return EventPage(items=items, next_cursor=next_cursor)


class PiiController(Controller):
    path = "/v1/pii"
    tags = ["events"]

    @get("/allow-list", operation_id="getPiiAllowList", opt={"scope": "admin"})
    async def get_allow_list(self, state: State, principal: Caller) -> PiiAllowList:
        """Field paths and patterns exempt from PII scrubbing for this tenant."""
        raw = await state.flywheel.db.fetchval("SELECT allow FROM pii_allow_lists WHERE tenant_id = $1",
                                               principal.tenant_id)
        return msgspec.convert(raw, PiiAllowList) if raw else PiiAllowList()

    @put("/allow-list", operation_id="putPiiAllowList", opt={"scope": "admin"})
    async def put_allow_list(self, state: State, principal: Caller, data: JSONBody[PiiAllowList]) -> PiiAllowList:
        """Replace the allow-list; applies to events received from now on (within 5 s on every replica).

        Patterns are RE2 syntax, matched against a candidate's whole text in
        linear time: backreferences, lookarounds, atomic groups and possessive
        quantifiers are refused with a 422 naming the entry (`$.patterns[3]`).
        """
        try:
            validate_allow_list(data)
        except ValueError as exc:
            raise InvalidInput(str(exc), field=_field_of(str(exc))) from None
        await state.flywheel.db.execute(
            """INSERT INTO pii_allow_lists (tenant_id, allow) VALUES ($1, $2)
               ON CONFLICT (tenant_id) DO UPDATE SET allow = excluded.allow, updated_at = now()""",
            principal.tenant_id, msgspec.to_builtins(data))
        state.flywheel.ingestor.forget_allow_list(principal.tenant_id)
        return data

    @get("/settings", operation_id="getPiiSettings", opt={"scope": "admin"})
    async def get_settings(self, state: State, principal: Caller) -> PiiSettings:
        """The tenant's PII settings: phone regions and optional kinds (the defaults until PUT)."""
        raw = await state.flywheel.db.fetchval("SELECT settings FROM pii_settings WHERE tenant_id = $1",
                                               principal.tenant_id)
        return msgspec.convert(raw, PiiSettings) if raw else PiiSettings()

    @put("/settings", operation_id="putPiiSettings", opt={"scope": "admin"})
    async def put_settings(self, state: State, principal: Caller, data: JSONBody[PiiSettings]) -> PiiSettings:
        """Replace the PII settings; applies to events received from now on (within 5 s on every replica).

        `phone_regions` are region codes libphonenumber knows (ISO 3166-1
        alpha-2 in capitals: "DE", "JP"), at most 40; national numbers of
        those regions are recognised, `+`/`00` numbers always are.
        `optional_kinds` switches on "iban" and "mac". A bad entry is a 422
        naming it (`$.phone_regions[2]`).
        """
        try:
            validate_settings(data)
        except ValueError as exc:
            raise InvalidInput(str(exc), field=_field_of(str(exc))) from None
        await state.flywheel.db.execute(
            """INSERT INTO pii_settings (tenant_id, settings) VALUES ($1, $2)
               ON CONFLICT (tenant_id) DO UPDATE SET settings = excluded.settings, updated_at = now()""",
            principal.tenant_id, msgspec.to_builtins(data))
        state.flywheel.ingestor.forget_allow_list(principal.tenant_id)
        return data


def _field_of(message: str) -> str | None:
    # validate_allow_list and validate_settings name the entry first, e.g. "paths[3]: ..."
    head = message.split(":", 1)[0].strip()
    return f"$.{head}" if head.startswith(("paths", "patterns", "phone_regions", "optional_kinds")) else None


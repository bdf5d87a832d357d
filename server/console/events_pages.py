"""Console pages for events: an explorer over `GET /v1/events`, one event's body, a download.

The filters are the API's (type, subject, session, time range), read through
the API's own handler (api_reads.py). The download streams every event of
the current filter as JSON lines or CSV, a page of the API at a time.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal
from urllib.parse import urlencode
from uuid import UUID

import msgspec
from litestar import Controller, Response, get
from litestar.datastructures import State
from litestar.params import QueryParameter
from litestar.response import Stream, Template

from flywheel.contracts.events import EventRecord
from flywheel.server.auth.principal import Caller, Principal
from flywheel.server.console.api_reads import MAX_EVENTS, list_events
from flywheel.server.errors import InvalidInput, NotFound
from flywheel.server.spreadsheets import spreadsheet_safe

PAGE_SIZE = 50
Text = Annotated[str | None, QueryParameter(max_length=500)]
CSV_COLUMNS = ("event_id", "type", "ts", "subject_id", "session_id", "received_at", "event")


class Filter(msgspec.Struct, frozen=True):
    """The explorer's filter, as the form sends it ("" means any)."""

    type: str = ""
    subject_id: str = ""
    session_id: str = ""
    since: str = ""
    until: str = ""

    def query(self) -> dict[str, str]:
        return {k: v for k, v in msgspec.structs.asdict(self).items() if v}

    def api_args(self) -> dict:
        return {"type": self.type or None, "subject_id": self.subject_id or None,
                "session_id": self.session_id or None, "since": moment(self.since, "since"),
                "until": moment(self.until, "until")}


def moment(text: str, field: str) -> datetime | None:
    """A time from the form: `datetime-local` inputs send no zone, and the console works in UTC."""
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{field} must be a date and time such as 2026-03-01T12:00", field=f"query.{field}") \
            from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def download_links(flt: Filter) -> dict[str, str]:
    return {fmt: f"/console/events/export?{urlencode({**flt.query(), 'format': fmt})}" for fmt in ("jsonl", "csv")}


async def find_event(state: State, principal: Principal, event_id: UUID, at: datetime) -> EventRecord:
    """One event, found through the API's listing at its own timestamp (ts and id name it)."""
    page = await list_events(state, principal, since=at, until=at + timedelta(microseconds=1), limit=MAX_EVENTS)
    for item in page.items:
        if item.event_id == event_id:
            return item
    raise NotFound("no such event")


async def shown_event(state: State, principal: Principal, event_id: UUID, at: str | None) -> EventRecord:
    """The event shown above the list, named by the list's links with its id and timestamp."""
    when = moment(at or "", "at")
    if when is None:
        raise InvalidInput("an event is named by its id and its time (at)", field="query.at")
    return await find_event(state, principal, event_id, when)


async def all_events(state: State, principal: Principal, flt: Filter) -> AsyncIterator[EventRecord]:
    cursor = None
    while True:
        page = await list_events(state, principal, **flt.api_args(), limit=MAX_EVENTS, cursor=cursor)
        for item in page.items:
            yield item
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


async def jsonl_lines(events: AsyncIterator[EventRecord]) -> AsyncIterator[bytes]:
    async for item in events:
        yield msgspec.json.encode(item) + b"\n"


async def csv_lines(events: AsyncIterator[EventRecord]) -> AsyncIterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    async for item in events:
        writer.writerow([item.event_id, item.type, item.ts.isoformat(), spreadsheet_safe(item.subject_id),
                         spreadsheet_safe(item.session_id),
                         item.received_at.isoformat(), msgspec.json.encode(item.event).decode()])
        if buffer.tell() > 64_000:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


class EventPages(Controller):
    path = "/events"

    @get("/", name="console:events")
    async def events(self, state: State, principal: Caller, type: Text = None, subject_id: Text = None,
                     session_id: Text = None, since: Text = None, until: Text = None,
                     cursor: Annotated[str | None, QueryParameter(max_length=500)] = None,
                     event_id: Annotated[UUID | None, QueryParameter()] = None, at: Text = None) -> Template:
        flt = Filter(type or "", subject_id or "", session_id or "", since or "", until or "")
        page = await list_events(state, principal, **flt.api_args(), limit=PAGE_SIZE, cursor=cursor or None)
        shown = await shown_event(state, principal, event_id, at) if event_id else None
        query = flt.query()
        return Template("console/events.html", context={
            "page": page, "filter": flt, "types": sorted(state.flywheel.contributions.event_types),
            "shown": shown, "query": query, "here": urlencode({**query, **({"cursor": cursor} if cursor else {})}),
            "next_url": f"?{urlencode({**query, 'cursor': page.next_cursor})}" if page.next_cursor else None,
            "first_url": f"?{urlencode(query)}" if cursor else None,
            "download": download_links(flt),
        })

    @get("/export", name="console:events-export")
    async def export(self, state: State, principal: Caller, type: Text = None, subject_id: Text = None,
                     session_id: Text = None, since: Text = None, until: Text = None,
                     format: Annotated[Literal["jsonl", "csv"] | None, QueryParameter()] = None) -> Response:
        flt = Filter(type or "", subject_id or "", session_id or "", since or "", until or "")
        flt.api_args()  # a bad time is a 400 now, not a broken download later
        if format is None:  # the address without a format: a page offering both
            return Template("console/events_export.html", context={"filter": flt, "download": download_links(flt)})
        events = all_events(state, principal, flt)
        body, media = (jsonl_lines(events), "application/x-ndjson") if format == "jsonl" else \
            (csv_lines(events), "text/csv; charset=utf-8")
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        return Stream(body, media_type=media,
                      headers={"Content-Disposition": f'attachment; filename="events-{stamp}.{format}"'})

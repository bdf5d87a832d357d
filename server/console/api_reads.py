"""The API's list handlers, called by console pages.

Listing events and model families is written once, in the API's handlers
(their SQL, filters, cursors and plugin hooks). The console calls those same
functions instead of a copy, so a page and the API never disagree about what
a filter means. Arguments are checked here as the API's query parameters
would be. Jobs have a service function of their own (jobs/status.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from flywheel.contracts.events import EventPage
from flywheel.contracts.jobs import JobPage, JobState
from flywheel.server.auth.principal import Principal
from flywheel.server.ingest.api import EventController
from flywheel.server.jobs import status
from flywheel.server.models.api import ModelController
from flywheel.server.pagination import decode_cursor, encode_cursor

MAX_JOBS, MAX_EVENTS = 500, 1000


async def list_jobs(state: Any, principal: Principal, *, name: str | None, job_state: JobState | None,
                    limit: int, cursor: str | None) -> JobPage:
    """A page of the tenant's jobs, newest first, with the same cursors as `GET /v1/jobs`."""
    limit = min(max(limit, 1), MAX_JOBS)
    after = decode_cursor(cursor, datetime, UUID) if cursor else None
    rows = await status.list_jobs(state.flywheel.db, principal.tenant_id, name=name, state=job_state,
                                  limit=limit + 1, after=after)
    items = rows[:limit]
    more = len(rows) > limit
    return JobPage(items=items, next_cursor=encode_cursor(items[-1].created_at, items[-1].id) if more else None)


async def list_events(state: Any, principal: Principal, *, type: str | None = None, since: datetime | None = None,
                      until: datetime | None = None, subject_id: str | None = None, session_id: str | None = None,
                      limit: int = 100, cursor: str | None = None) -> EventPage:
    return await EventController.list_events.fn(None, state, principal, type=type, since=since, until=until,
                                                subject_id=subject_id, session_id=session_id,
                                                limit=min(max(limit, 1), MAX_EVENTS), cursor=cursor)


async def list_models(state: Any, principal: Principal):
    """`GET /v1/models`: every family with this tenant's versions (a `FamilyList`)."""
    return await ModelController.list_models.fn(None, state, principal)

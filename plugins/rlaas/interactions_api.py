"""`/v1/rlaas/interactions`: what the gateway recorded, with the feedback and task results
that refer to it.

Reads the tables `projection.py` fills. A list is newest first with keyset
pagination on (ts, interaction_id); its WHERE clause holds only the filters
given, so each filtered page is a range scan of the index made for it
(migrations/0002_interactions.sql) rather than one plan for every case.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Controller, get
from litestar.datastructures import State
from litestar.params import FromPath, QueryParameter

from flywheel.plugins.rlaas.contracts import ROUTE_PATTERN, Comparison, Edit, Rating, Signal, Thumbs
from flywheel.plugins.rlaas.interaction_types import (
    DETAIL_MAX,
    PAGE_MAX,
    FeedbackRead,
    InteractionDetail,
    InteractionFilter,
    InteractionPage,
    InteractionSummary,
    Role,
    TaskResultRead,
)
from flywheel.plugins.rlaas.rewards_api import reward_of
from flywheel.plugins.rlaas.users import user_hash
from flywheel.server.plugin_api import Caller, InvalidInput, NotFound, decode_cursor, encode_cursor

_COUNTS = """
    (SELECT count(*) FROM rlaas_feedback f
      WHERE f.tenant_id = i.tenant_id AND f.interaction_id = i.interaction_id) AS feedback_count,
    (SELECT count(*) FROM rlaas_task_results r
      WHERE r.tenant_id = i.tenant_id AND r.interaction_id = i.interaction_id) AS task_result_count"""
_SUMMARY = ", ".join(f"i.{name}" for name in InteractionSummary.__struct_fields__
                     if name not in ("feedback_count", "task_result_count")) + "," + _COUNTS
_HAS_FEEDBACK = ("EXISTS (SELECT 1 FROM rlaas_feedback f "
                 "WHERE f.tenant_id = i.tenant_id AND f.interaction_id = i.interaction_id)")
# Filter field -> its condition on `i`; `{}` is the number of the parameter holding the value.
CONDITIONS = {
    "route": "i.route = ${}",
    "policy": "i.policy = ${}",
    "policy_version": "i.policy_version = ${}",
    "user_hash": "i.user_hash = ${}",
    "role": "i.role = ${}",
    "since": "i.ts >= ${}",
    "until": "i.ts < ${}",
}
_AT = re.compile(r" - at `\$\.(\w+)")


def parse_filter(raw: dict[str, Any], *, prefix: str = "query.") -> InteractionFilter:
    """The filter from raw values (None: not given); InvalidInput names the field at fault."""
    try:
        return msgspec.convert({k: v for k, v in raw.items() if v is not None}, InteractionFilter)
    except msgspec.ValidationError as exc:
        match = _AT.search(str(exc))
        message = str(exc)[: match.start()] if match else str(exc)
        raise InvalidInput(message, field=f"{prefix}{match.group(1)}" if match else None) from None


def where_clause(tenant_id: UUID, f: InteractionFilter) -> tuple[list[str], list[Any]]:
    conditions, args = ["i.tenant_id = $1"], [tenant_id]
    hashes = [h for h in (f.user_hash, user_hash(tenant_id, f.user) if f.user is not None else None) if h]
    for name, sql in CONDITIONS.items():
        values = hashes if name == "user_hash" else [getattr(f, name)]
        for value in values:
            if value is not None:
                args.append(value)
                conditions.append(sql.format(len(args)))
    if f.has_feedback is not None:
        conditions.append(_HAS_FEEDBACK if f.has_feedback else f"NOT {_HAS_FEEDBACK}")
    return conditions, args


async def find_interactions(db: Any, tenant_id: UUID, f: InteractionFilter, *, limit: int = 50,
                            cursor: str | None = None) -> InteractionPage:
    conditions, args = where_clause(tenant_id, f)
    if cursor:
        ts, last_id = decode_cursor(cursor, datetime, UUID)
        if ts.tzinfo is None:  # ours always carry one; a naive time would be read in the server's zone
            raise InvalidInput("invalid cursor", field="query.cursor")
        args += [ts, last_id]
        conditions.append(f"(i.ts, i.interaction_id) < (${len(args) - 1}, ${len(args)})")
    args.append(limit + 1)
    rows = await db.fetch(
        f"""SELECT {_SUMMARY} FROM rlaas_interactions i WHERE {' AND '.join(conditions)}
            ORDER BY i.ts DESC, i.interaction_id DESC LIMIT ${len(args)}""", *args)
    items = [InteractionSummary(**dict(r)) for r in rows[:limit]]
    more = len(rows) > limit
    return InteractionPage(items=items, next_cursor=encode_cursor(items[-1].ts, items[-1].interaction_id)
                           if more else None)


def signal_of(row: Any) -> Signal:
    kind = row["kind"]
    if kind == "thumbs":
        return Thumbs(value="up" if row["value"] > 0 else "down")
    if kind == "rating":
        return Rating(value=row["value"])
    if kind == "edit":
        return Edit(corrected_text=row["corrected_text"])
    return Comparison(other_interaction_id=row["other_interaction_id"], preferred=row["preferred"])


async def interaction_detail(db: Any, tenant_id: UUID, interaction_id: UUID) -> InteractionDetail:
    row = await db.fetchrow(f"SELECT {_SUMMARY}, i.request, i.response, i.attributes FROM rlaas_interactions i "
                            "WHERE i.tenant_id = $1 AND i.interaction_id = $2", tenant_id, interaction_id)
    if row is None:
        raise NotFound("no such interaction")  # never echo the id: it looks the same whoever owns it
    fields = dict(row)
    bodies = {k: fields.pop(k) for k in ("request", "response", "attributes")}
    # Its own feedback, and comparisons made on another interaction that name this one (each side
    # found through its own index; a comparison is still one event, stored on the interaction it came on).
    feedback = await db.fetch(
        """SELECT * FROM (
             (SELECT event_id, interaction_id, ts, kind, value, corrected_text, other_interaction_id, preferred,
                     comment, subject_id
                FROM rlaas_feedback WHERE tenant_id = $1 AND interaction_id = $2 ORDER BY ts, event_id LIMIT $3)
             UNION
             (SELECT event_id, interaction_id, ts, kind, value, corrected_text, other_interaction_id, preferred,
                     comment, subject_id
                FROM rlaas_feedback WHERE tenant_id = $1 AND other_interaction_id = $2 ORDER BY ts, event_id
               LIMIT $3)) f
           ORDER BY ts, event_id LIMIT $3""", tenant_id, interaction_id, DETAIL_MAX)
    results = await db.fetch(
        """SELECT event_id, interaction_id, ts, task, outcome, score, details, subject_id
           FROM rlaas_task_results WHERE tenant_id = $1 AND interaction_id = $2
           ORDER BY ts, event_id LIMIT $3""", tenant_id, interaction_id, DETAIL_MAX)
    return InteractionDetail(
        interaction=InteractionSummary(**fields), **bodies,
        feedback=[FeedbackRead(event_id=r["event_id"], interaction_id=r["interaction_id"], ts=r["ts"],
                               signal=signal_of(r), comment=r["comment"], subject_id=r["subject_id"])
                  for r in feedback],
        task_results=[TaskResultRead(**dict(r)) for r in results],
        reward=await reward_of(db, tenant_id, interaction_id))


class InteractionController(Controller):
    path = "/v1/rlaas/interactions"
    tags = ["rlaas"]

    @get("/", operation_id="rlaasListInteractions")
    async def list_interactions(
        self, state: State, principal: Caller,
        route: Annotated[str | None, QueryParameter(pattern=ROUTE_PATTERN, max_length=128)] = None,
        policy: Annotated[str | None, QueryParameter(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$", max_length=64,
                                                     description="The policy's name.")] = None,
        policy_version: Annotated[int | None, QueryParameter(ge=1, le=1_000_000)] = None,
        user: Annotated[str | None, QueryParameter(min_length=1, max_length=256, description=(
            "The end user's id as the application knows it (the OpenAI `user` field): "
            "hashed as the gateway hashes it."))] = None,
        user_hash: Annotated[str | None, QueryParameter(pattern=r"^[0-9a-f]{32}$", max_length=32)] = None,
        role: Annotated[Role | None, QueryParameter()] = None,
        has_feedback: Annotated[bool | None, QueryParameter()] = None,
        since: Annotated[datetime | None, QueryParameter(description="Inclusive; with a timezone.")] = None,
        until: Annotated[datetime | None, QueryParameter(description="Exclusive; with a timezone.")] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=PAGE_MAX)] = 50,
        cursor: Annotated[str | None, QueryParameter(max_length=1000)] = None,
    ) -> InteractionPage:
        """The gateway's interactions, newest first, with how many feedback and task results each has."""
        f = parse_filter({"route": route, "policy": policy, "policy_version": policy_version, "user": user,
                          "user_hash": user_hash, "role": role, "has_feedback": has_feedback, "since": since,
                          "until": until})
        return await find_interactions(state.flywheel.db, principal.tenant_id, f, limit=limit, cursor=cursor)

    @get("/{interaction_id:uuid}", operation_id="rlaasGetInteraction")
    async def get_interaction(self, state: State, principal: Caller,
                              interaction_id: FromPath[UUID]) -> InteractionDetail:
        """One interaction: its request and response, its feedback and its task results."""
        return await interaction_detail(state.flywheel.db, principal.tenant_id, interaction_id)

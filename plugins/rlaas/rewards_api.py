"""`/v1/rlaas/rewards` and `/v1/rlaas/pairs`: the rewards job's output, its settings, and running it.

Lists are newest first (interaction time, then id) with keyset pagination;
each filter adds one condition, so a page is a range scan of
`rlaas_rewards_recent` / `rlaas_pairs_recent` (or of the route index).
Reading needs `read`, queueing the job `write`, changing the weights `admin`.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Controller, get, post, put
from litestar.datastructures import State
from litestar.params import JSONBody, QueryParameter

from flywheel.contracts.jobs import JobRead
from flywheel.plugins.rlaas import rewards
from flywheel.plugins.rlaas.contracts import ROUTE_PATTERN
from flywheel.plugins.rlaas.reward_types import (
    PAGE_MAX,
    ComputeRewards,
    PairFilter,
    PairPage,
    PairRead,
    PairSource,
    RewardFilter,
    RewardPage,
    RewardRead,
    RewardSettings,
    RewardSettingsRead,
)
from flywheel.server.plugin_api import Caller, InvalidInput, decode_cursor, encode_cursor, enqueue, job_status

REWARD_COLUMNS = ", ".join(RewardRead.__struct_fields__)
PAIR_COLUMNS = ", ".join(PairRead.__struct_fields__)
# Filter field -> its condition; `{}` is the number of the parameter holding the value.
REWARD_CONDITIONS = {"route": "route = ${}", "policy": "policy = ${}", "since": "ts >= ${}", "until": "ts < ${}",
                     "min_reward": "reward >= ${}"}
PAIR_CONDITIONS = {"route": "route = ${}", "source": "source = ${}", "prompt_hash": "prompt_hash = ${}",
                   "since": "ts >= ${}", "until": "ts < ${}"}
_AT = re.compile(r" - at `\$\.(\w+)")


def parse_filter(raw: dict[str, Any], kind: type, *, prefix: str = "query.") -> Any:
    """The filter from raw values (None: not given); InvalidInput names the field at fault."""
    try:
        return msgspec.convert({k: v for k, v in raw.items() if v is not None}, kind)
    except msgspec.ValidationError as exc:
        match = _AT.search(str(exc))
        message = str(exc)[: match.start()] if match else str(exc)
        raise InvalidInput(message, field=f"{prefix}{match.group(1)}" if match else None) from None


async def _page(db: Any, table: str, columns: str, key: str, tenant_id: UUID, conditions: dict[str, str],
                f: Any, limit: int, cursor: str | None) -> list[Any]:
    where, args = ["tenant_id = $1"], [tenant_id]
    for name, sql in conditions.items():
        if (value := getattr(f, name)) is not None:
            args.append(value)
            where.append(sql.format(len(args)))
    if cursor:
        ts, last = decode_cursor(cursor, datetime, UUID)
        if ts.tzinfo is None:  # ours always carry one; a naive time would be read in the server's zone
            raise InvalidInput("invalid cursor", field="query.cursor")
        args += [ts, last]
        where.append(f"(ts, {key}) < (${len(args) - 1}, ${len(args)})")
    args.append(limit + 1)
    return await db.fetch(f"SELECT {columns} FROM {table} WHERE {' AND '.join(where)} "
                          f"ORDER BY ts DESC, {key} DESC LIMIT ${len(args)}", *args)


async def find_rewards(db: Any, tenant_id: UUID, f: RewardFilter, *, limit: int = 50,
                       cursor: str | None = None) -> RewardPage:
    rows = await _page(db, "rlaas_rewards", REWARD_COLUMNS, "interaction_id", tenant_id, REWARD_CONDITIONS, f,
                       limit, cursor)
    items = [RewardRead(**dict(r)) for r in rows[:limit]]
    return RewardPage(items=items, next_cursor=encode_cursor(items[-1].ts, items[-1].interaction_id)
                      if len(rows) > limit else None)


async def find_pairs(db: Any, tenant_id: UUID, f: PairFilter, *, limit: int = 50,
                     cursor: str | None = None) -> PairPage:
    rows = await _page(db, "rlaas_pairs", PAIR_COLUMNS, "pair_id", tenant_id, PAIR_CONDITIONS, f, limit, cursor)
    items = [PairRead(**dict(r)) for r in rows[:limit]]
    return PairPage(items=items, next_cursor=encode_cursor(items[-1].ts, items[-1].pair_id)
                    if len(rows) > limit else None)


async def reward_of(db: Any, tenant_id: UUID, interaction_id: UUID) -> RewardRead | None:
    row = await db.fetchrow(f"SELECT {REWARD_COLUMNS} FROM rlaas_rewards WHERE tenant_id = $1 "
                            "AND interaction_id = $2", tenant_id, interaction_id)
    return RewardRead(**dict(row)) if row is not None else None


Limit = Annotated[int, QueryParameter(ge=1, le=PAGE_MAX)]
Cursor = Annotated[str | None, QueryParameter(max_length=1000)]
Route = Annotated[str | None, QueryParameter(pattern=ROUTE_PATTERN, max_length=128)]
Since = Annotated[datetime | None, QueryParameter(description="Inclusive; with a timezone.")]
Until = Annotated[datetime | None, QueryParameter(description="Exclusive; with a timezone.")]


class RewardController(Controller):
    path = "/v1/rlaas"
    tags = ["rlaas"]

    @get("/rewards/settings", operation_id="rlaasGetRewardSettings")
    async def get_settings(self, state: State, principal: Caller) -> RewardSettingsRead:
        """The weights of each signal in the reward and the reward-gap pairs' threshold (`version` 0: the
        defaults)."""
        return await rewards.load_settings(state.flywheel.db, principal.tenant_id)

    @put("/rewards/settings", operation_id="rlaasPutRewardSettings", opt={"scope": "admin"})
    async def put_settings(self, state: State, principal: Caller,
                           data: JSONBody[RewardSettings]) -> RewardSettingsRead:
        """Replace the settings. A change bumps `version` and queues a recompute of every reward and pair
        (`job_id`); sending the settings as they are changes nothing. At least one weight must be above 0."""
        saved, changed = await rewards.save_settings(state.flywheel.db, principal.tenant_id, data)
        if changed:
            saved.job_id = await enqueue(state.flywheel, rewards.JOB, ComputeRewards(),
                                         tenant_id=principal.tenant_id)
        return saved

    @post("/rewards/compute", operation_id="rlaasComputeRewards", status_code=202, opt={"scope": "write"})
    async def compute(self, state: State, principal: Caller,
                      data: JSONBody[ComputeRewards | None] = None) -> JobRead:
        """Queue the rewards job for the pending feedback (no body, or `{"full": true}`: every interaction
        with feedback); follow it at `GET /v1/jobs/{id}`, cancel it at `POST /v1/jobs/{id}/cancel`."""
        job_id = await enqueue(state.flywheel, rewards.JOB, data or ComputeRewards(), tenant_id=principal.tenant_id)
        return await job_status(state.flywheel, job_id, tenant_id=principal.tenant_id)

    @get("/rewards", operation_id="rlaasListRewards")
    async def list_rewards(
        self, state: State, principal: Caller, route: Route = None,
        policy: Annotated[str | None, QueryParameter(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$", max_length=64,
                                                     description="The policy's name.")] = None,
        since: Since = None, until: Until = None,
        min_reward: Annotated[float | None, QueryParameter(ge=-1, le=1)] = None,
        limit: Limit = 50, cursor: Cursor = None,
    ) -> RewardPage:
        """Rewards, newest interaction first, each with the signals and weights that produced it."""
        f = parse_filter({"route": route, "policy": policy, "since": since, "until": until,
                          "min_reward": min_reward}, RewardFilter)
        return await find_rewards(state.flywheel.db, principal.tenant_id, f, limit=limit, cursor=cursor)

    @get("/pairs", operation_id="rlaasListPairs")
    async def list_pairs(
        self, state: State, principal: Caller, route: Route = None,
        source: Annotated[PairSource | None, QueryParameter()] = None,
        prompt_hash: Annotated[str | None, QueryParameter(pattern=r"^[0-9a-f]{32}$", max_length=32)] = None,
        since: Since = None, until: Until = None, limit: Limit = 50, cursor: Cursor = None,
    ) -> PairPage:
        """Preference pairs, newest first: for the prompt of `interaction_id`, chosen beats rejected."""
        f = parse_filter({"route": route, "source": source, "prompt_hash": prompt_hash, "since": since,
                          "until": until}, PairFilter)
        return await find_pairs(state.flywheel.db, principal.tenant_id, f, limit=limit, cursor=cursor)

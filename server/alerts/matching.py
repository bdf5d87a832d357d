"""Which of a tenant's alert rules applies to an alert: the most specific match.

A rule's `match` is an alert rule name (`drives.top_risk_band`), a prefix
(`drives.*`) or `*`. An exact name beats a prefix, a longer prefix a shorter
one, and any prefix beats `*`. A tenant with no matching rule keeps every
alert and delivers none (there is nowhere to send it).
"""

from __future__ import annotations

import re
from typing import Any
from uuid import UUID

import asyncpg

RULE_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")  # namespaced: "drives.top_risk_band"
MATCH = re.compile(r"^(\*|[a-z][a-z0-9_]*(\.[a-z0-9_]+)*\.\*|[a-z][a-z0-9_]*(\.[a-z0-9_]+)+)$")

RULE_FOR = """
    SELECT id, match, enabled, min_severity, channel_ids, auto_resolve FROM alert_rules
    WHERE tenant_id = $1
      AND (match = $2 OR match = '*' OR (right(match, 2) = '.*' AND starts_with($2, left(match, -1))))
    ORDER BY match = $2 DESC, length(match) DESC
    LIMIT 1"""


async def rule_for(conn: asyncpg.Connection | asyncpg.Pool, tenant_id: UUID, rule: str) -> dict[str, Any] | None:
    """The tenant's rule that governs alerts named `rule`, or None."""
    row = await conn.fetchrow(RULE_FOR, tenant_id, rule)
    return dict(row) if row is not None else None

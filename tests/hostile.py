"""Hostile values for sweeps: job payloads built from their Structs, and
strings, numbers and documents that have broken servers before."""

from __future__ import annotations

from typing import Any

import msgspec

# Strings a library or a query might interpret: traversal, globs, SQL, LIKE
# and regex syntax, a long one, and text that looks like another tenant.
HOSTILE_STRINGS = ["", "../../../etc/passwd", "*", "%", "_", "' OR '1'='1' --", ".*", "(a+)+$",
                   "x" * 5000, "tenants/", "\u202e\ufeff", "drives.h30", "core.generic"]
HOSTILE_INTS = [-1, 0, 2**31, -(2**63), 2**64, 10**30]
HOSTILE_FLOATS = [-1.0, 0.0, 1e308, -1e308, 1e-320]


def values_for(info: msgspec.inspect.Type, victim: str) -> list[Any]:
    """Values to try in a field of type `info`; `victim` is the other tenant's id."""
    t = msgspec.inspect
    if isinstance(info, t.UnionType):
        return [v for member in info.types for v in values_for(member, victim)] + [None]
    if isinstance(info, t.StrType):
        return [*HOSTILE_STRINGS, victim]
    if isinstance(info, t.IntType):
        return HOSTILE_INTS
    if isinstance(info, t.FloatType):
        return [*HOSTILE_FLOATS, *HOSTILE_INTS[:3]]
    if isinstance(info, t.BoolType):
        return [True, False]
    if isinstance(info, (t.DateType, t.DateTimeType)):
        return ["0001-01-01", "9999-12-31", "2026-13-40"]
    if isinstance(info, t.DictType):
        return [{"tenant_id": victim}, {"tenant": victim, "prefix": "../"}, {"x": {"y": [victim]}}]
    if isinstance(info, (t.ListType, t.SetType)):
        return [[], [victim]]
    if isinstance(info, t.LiteralType):
        return [*info.values, "other"]
    if isinstance(info, t.StructType):
        return [{}, {"tenant_id": victim}]
    return [victim]


def payload_variants(struct: type | None, victim: str, bases: list[dict[str, Any]]) -> list[dict[str, Any] | None]:
    """Each base payload, then each base with one field set to each hostile value,
    and with an extra `tenant_id` naming the victim."""
    if struct is None:
        return [None, {"tenant_id": victim}]
    out: list[dict[str, Any] | None] = []
    for base in bases:
        out += [base, {**base, "tenant_id": victim}]
        for field in msgspec.inspect.type_info(struct).fields:
            out += [{**base, field.encode_name: value} for value in values_for(field.type, victim)]
    return out

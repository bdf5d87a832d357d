"""A normalized, version-independent dump of a database's schema.

pg_dump's output differs between Postgres versions (the tests may run on the
machine's Postgres 15 or the embedded 16), so the committed dump is built
from the catalogs instead: tables and columns, constraints, indexes.
Partitions made at run time are left out; their parents are in.
"""

from __future__ import annotations

import asyncpg

_COLUMNS = """
SELECT c.relname AS table, a.attname AS column, format_type(a.atttypid, a.atttypmod) AS type,
       a.attnotnull AS not_null, pg_get_expr(d.adbin, d.adrelid) AS default
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
ORDER BY c.relname, a.attnum
"""
_CONSTRAINTS = """
SELECT c.relname AS table, k.conname AS name, pg_get_constraintdef(k.oid) AS def
FROM pg_constraint k
JOIN pg_class c ON c.oid = k.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
WHERE NOT c.relispartition AND k.contype <> 'n'
ORDER BY c.relname, k.conname
"""
_INDEXES = """
SELECT i.tablename AS table, i.indexname AS name, i.indexdef AS def
FROM pg_indexes i JOIN pg_class c ON c.relname = i.tablename
JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = i.schemaname
WHERE i.schemaname = 'public' AND NOT c.relispartition
ORDER BY i.tablename, i.indexname
"""


async def dump_schema(conn: asyncpg.Connection) -> str:
    lines = []
    for r in await conn.fetch(_COLUMNS):
        null = " NOT NULL" if r["not_null"] else ""
        default = f" DEFAULT {r['default']}" if r["default"] is not None else ""
        lines.append(f"column {r['table']}.{r['column']} {r['type']}{null}{default}")
    for r in await conn.fetch(_CONSTRAINTS):
        lines.append(f"constraint {r['table']}.{r['name']} {r['def']}")
    for r in await conn.fetch(_INDEXES):
        lines.append(f"index {r['table']}.{r['name']} {r['def']}")
    return "\n".join(lines) + "\n"

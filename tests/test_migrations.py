"""Migrations: an empty database migrates to the committed schema, safely."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import asyncpg
import pytest

from flywheel.contracts.plugins import MigrationSource
from flywheel.server.db.migrations import CORE_SOURCE, MigrationError, migrate, pending, read_source
from tests.schema_dump import dump_schema

# The core's schema and every plugin namespace in the repo (built-in plugins and the example).
SCHEMA_FILE = Path(__file__).parent / "schema" / "schema.txt"
EXAMPLE = MigrationSource(namespace="example", package="flywheel_example.migrations")
DRIVES = MigrationSource(namespace="drives", package="flywheel.plugins.drives.migrations")
RLAAS = MigrationSource(namespace="rlaas", package="flywheel.plugins.rlaas.migrations")
CREDIT = MigrationSource(namespace="credit", package="flywheel.plugins.credit.migrations")
TRACES = MigrationSource(namespace="traces", package="flywheel.plugins.traces.migrations")


@pytest.fixture
async def empty_db(flywheel_services):
    dsn = await flywheel_services.new_database()
    conn = await asyncpg.connect(dsn)
    yield dsn, conn
    await conn.close()


async def test_empty_database_migrates_to_the_committed_schema(empty_db):
    _, conn = empty_db
    applied = await migrate(conn, [CORE_SOURCE, DRIVES, CREDIT, RLAAS, TRACES, EXAMPLE])
    assert [(m.namespace, m.version) for m in applied][:1] == [("core", 1)]
    assert {("example", 1), ("drives", 1), ("credit", 1), ("rlaas", 2),
            ("traces", 1)} <= {(m.namespace, m.version) for m in applied}
    dumped = await dump_schema(conn)
    if os.environ.get("FLYWHEEL_UPDATE_SCHEMA") == "1":
        SCHEMA_FILE.write_text(dumped)
    expected = SCHEMA_FILE.read_text()
    assert dumped == expected, "schema drifted; review, then regenerate with FLYWHEEL_UPDATE_SCHEMA=1"


async def test_second_run_applies_nothing(empty_db):
    _, conn = empty_db
    await migrate(conn, [CORE_SOURCE])
    assert await migrate(conn, [CORE_SOURCE]) == []
    assert await pending(conn, [CORE_SOURCE]) == []


async def test_database_from_a_newer_release_is_refused(empty_db):
    _, conn = empty_db
    await migrate(conn, [CORE_SOURCE])
    await conn.execute("INSERT INTO flywheel_migrations (namespace, version, name, checksum) "
                       "VALUES ('core', 9999, 'future', 'x')")
    with pytest.raises(MigrationError, match="core/9999"):
        await migrate(conn, [CORE_SOURCE])


async def test_edited_migration_is_refused(empty_db, tmp_path):
    _, conn = empty_db
    (tmp_path / "0001_first.sql").write_text("CREATE TABLE mig_t (a int);")
    source = MigrationSource(namespace="scratch", path=str(tmp_path))
    await migrate(conn, [CORE_SOURCE, source])
    (tmp_path / "0001_first.sql").write_text("CREATE TABLE mig_t (a bigint);")
    with pytest.raises(MigrationError, match="was changed after it was applied"):
        await migrate(conn, [CORE_SOURCE, source])


async def test_failing_file_rolls_back_alone(empty_db, tmp_path):
    _, conn = empty_db
    (tmp_path / "0001_ok.sql").write_text("CREATE TABLE mig_ok (a int);")
    (tmp_path / "0002_bad.sql").write_text("CREATE TABLE mig_bad (a int); SELECT no_such_function();")
    source = MigrationSource(namespace="scratch", path=str(tmp_path))
    with pytest.raises(asyncpg.UndefinedFunctionError):
        await migrate(conn, [CORE_SOURCE, source])
    assert await conn.fetchval("SELECT to_regclass('mig_ok') IS NOT NULL")
    assert not await conn.fetchval("SELECT to_regclass('mig_bad') IS NOT NULL")
    versions = await conn.fetch("SELECT version FROM flywheel_migrations WHERE namespace = 'scratch'")
    assert [r["version"] for r in versions] == [1]


async def test_bad_file_names_are_refused(tmp_path, empty_db):
    _, conn = empty_db
    (tmp_path / "1_oops.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="bad migration file name"):
        await migrate(conn, [MigrationSource(namespace="scratch", path=str(tmp_path))])


async def test_replicas_starting_together_apply_each_file_once(empty_db):
    dsn, _ = empty_db
    conns = [await asyncpg.connect(dsn) for _ in range(4)]
    try:
        results = await asyncio.gather(*(migrate(c, [CORE_SOURCE, EXAMPLE]) for c in conns))
    finally:
        for c in conns:
            await c.close()
    applied = [m for batch in results for m in batch]
    every_file = [(m.namespace, m.version) for source in (CORE_SOURCE, EXAMPLE) for m in read_source(source)]
    assert len(every_file) >= 3
    assert sorted((m.namespace, m.version) for m in applied) == sorted(every_file), "each file once, by one replica"


async def test_concurrent_partition_creation_does_not_race(database):
    """API workers starting together each ensure this week's partitions: none may fail."""
    import asyncio
    from datetime import date, timedelta

    first = date(2031, 3, 1)
    last = first + timedelta(days=6)
    try:
        results = await asyncio.gather(*[database.fetchval("SELECT flywheel_ensure_event_partitions($1, $2)",
                                                           first, last) for _ in range(8)])
        assert sum(results) == 7, results  # each day created exactly once, by one of the callers
        made = await database.fetchval(
            "SELECT count(*) FROM pg_class WHERE relkind = 'r' AND relname LIKE 'events_203103%'")
        assert made == 7
    finally:
        for i in range(7):
            await database.execute(f'DROP TABLE IF EXISTS "events_{(first + timedelta(days=i)):%Y%m%d}"')

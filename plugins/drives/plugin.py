"""The drives plugin's hooks (entry point `drives` in Flywheel's pyproject.toml)."""

from __future__ import annotations

from flywheel.contracts.plugins import MigrationSource
from flywheel.plugins.drives import __version__  # noqa: F401  (reported by /v1/plugins)
from flywheel.plugins.drives.contracts import SmartDaily
from flywheel.server import hookimpl


@hookimpl
def register_migrations():
    return [MigrationSource(namespace="drives", package="flywheel.plugins.drives.migrations")]


@hookimpl
def register_event_types():
    return [SmartDaily]


@hookimpl
def register_cli_commands():
    from flywheel.plugins.drives.cli import drives

    return [drives]


@hookimpl
async def on_events_committed(state, tenant_id, events):
    """Streamed daily records join the imported ones (a day already stored is left as it is)."""
    from flywheel.plugins.drives.daily import event_rows, write_rows

    rows = event_rows(events, tenant_id)
    if rows:
        async with state.db.acquire() as conn, conn.transaction():
            await write_rows(conn, rows)


@hookimpl
def register_jobs():
    from flywheel.plugins.drives.features import JOBS

    return JOBS


@hookimpl
def register_cron_jobs():
    from flywheel.contracts.jobs import CronSpec
    from flywheel.plugins.drives.features import BuildFeatures

    # After the night's imports; a day already built is skipped, so an extra run costs little.
    return [CronSpec(name="drives.build_features_hourly", job="drives.build_features", minute=40,
                     payload=BuildFeatures())]

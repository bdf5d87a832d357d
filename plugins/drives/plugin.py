"""The drives plugin's hooks (entry point `drives` in Flywheel's pyproject.toml)."""

from __future__ import annotations

from flywheel.contracts.plugins import MigrationSource
from flywheel.plugins.drives import __version__  # noqa: F401  (reported by /v1/plugins)
from flywheel.plugins.drives.contracts import SmartDaily
from flywheel.server.plugin_api import hookimpl, subscribe


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
@subscribe(SmartDaily)
async def on_events_committed(state, tenant_id, events):
    """Streamed daily records join the imported ones (a day already stored is left as it is)."""
    from flywheel.plugins.drives.daily import event_rows, write_rows

    rows = event_rows(events, tenant_id)
    if rows:
        async with state.db.acquire() as conn, conn.transaction():
            await write_rows(conn, rows)


@hookimpl
def register_jobs():
    from flywheel.plugins.drives import backtest, features, scoring, sync

    return [*features.JOBS, *scoring.JOBS, *sync.JOBS, *backtest.JOBS]


@hookimpl
def register_cron_jobs():
    from flywheel.contracts.jobs import CronSpec
    from flywheel.plugins.drives.features import BuildFeatures

    # After the night's imports; a day already built is skipped, so an extra run costs little.
    from flywheel.plugins.drives.scoring import ScoreFleet
    from flywheel.plugins.drives.sync import SyncEvents

    return [CronSpec(name="drives.sync_events_hourly", job="drives.sync_events", minute=30, payload=SyncEvents()),
            CronSpec(name="drives.build_features_hourly", job="drives.build_features", minute=40,
                     payload=BuildFeatures()),
            CronSpec(name="drives.score_fleet_daily", job="drives.score_fleet", hour=5, minute=10,
                     payload=ScoreFleet())]


@hookimpl
def register_model_families():
    from flywheel.plugins.drives.model import FAMILY

    return [FAMILY]


@hookimpl
def register_routes():
    from flywheel.plugins.drives.api import DriveController
    from flywheel.plugins.drives.backtests_api import BacktestController
    from flywheel.plugins.drives.settings import DriveSettingsController

    return [DriveController, DriveSettingsController, BacktestController]


@hookimpl
async def on_demo(state, tenant_id):
    """A synthetic fleet, its features, a trained H30 model and today's risks, so every view is populated.

    Runs in the background (the server is up meanwhile, and the fleet views
    fill in within seconds); a second start finds the data and does nothing.
    """
    import asyncio

    from flywheel.plugins.drives.demo import seed_demo

    task = state.extras["drives.demo"] = asyncio.create_task(seed_demo(state, tenant_id))
    return task  # the core says when every plugin's demo data is in


@hookimpl
def register_pages():
    from flywheel.contracts.pages import Page
    from flywheel.plugins.drives.backtest_pages import BacktestPages
    from flywheel.plugins.drives.pages import DrivePages

    templates = "flywheel.plugins.drives.templates"
    return [Page(path="/drives", nav_title="Fleet", handler=DrivePages, order=10, templates=templates),
            Page(path="/drives/list", nav_title="Drives", handler=DrivePages, order=11),
            Page(path="/drives/backtests", nav_title="Backtests", handler=BacktestPages, order=12),
            Page(path="/drives/{serial:path}", nav_title="Drive", handler=DrivePages, nav=False)]


@hookimpl
async def on_shutdown(state):
    """Stop a demo still loading (its steps resume on the next start)."""
    import asyncio

    task = state.extras.pop("drives.demo", None)
    if task is not None and not task.done():
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@hookimpl
def register_alert_conditions():
    """A drive entering the top risk band; the fleet's failure rate above its trailing mean (alerts.py)."""
    from flywheel.plugins.drives.alerts import CONDITIONS

    return CONDITIONS


# -- model monitoring (plugins/drives/monitoring.py) ----------------------------------------


@hookimpl
def monitoring_thresholds(family):
    from flywheel.plugins.drives.monitoring import thresholds

    return thresholds(family)


@hookimpl
async def monitoring_rows(state, tenant_id, family, version, day):
    """The drives a version scored for a data day, with their features: drift by the day the rows describe."""
    from flywheel.plugins.drives.monitoring import scored_rows

    return await scored_rows(state, tenant_id, family, version, day)


@hookimpl
async def monitoring_outcomes(state, tenant_id, family, version, day):
    """Each scored drive's risk and whether it failed within the horizon, once the data covers it."""
    from flywheel.plugins.drives.monitoring import outcomes

    return await outcomes(state, tenant_id, family, version, day)

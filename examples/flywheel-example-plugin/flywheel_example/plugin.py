"""The plugin module named by the entry point: one function per hook."""

from __future__ import annotations

from flywheel.contracts.jobs import CronSpec, JobSpec
from flywheel.contracts.plugins import MigrationSource
from flywheel.server.plugin_api import hookimpl
from flywheel_example import (
    __version__,  # noqa: F401  (Flywheel reports the distribution's version)
)
from flywheel_example.contracts import CountNotes, NoteViewed


@hookimpl
def register_routes():
    from flywheel_example.routes import NoteController

    return [NoteController]


@hookimpl
def register_migrations():
    return [MigrationSource(namespace="example", package="flywheel_example.migrations")]


@hookimpl
def register_event_types():
    return [NoteViewed]


@hookimpl
def register_jobs():
    from flywheel_example.jobs import count_notes

    return [JobSpec(name="example.count_notes", func=count_notes, payload=CountNotes, timeout_s=60)]


@hookimpl
def register_cron_jobs():
    return [CronSpec(name="example.count_notes_hourly", job="example.count_notes", minute=5, payload=CountNotes())]


@hookimpl
def register_cli_commands():
    from flywheel_example.cli import example

    return [example]


@hookimpl
async def on_demo(state, tenant_id):
    """One welcome note for the demo tenant; a second start adds nothing."""
    await state.db.execute(
        """INSERT INTO example_notes (id, tenant_id, title, body)
           SELECT gen_random_uuid(), $1, 'Welcome to Flywheel', 'Created by flywheel up --demo.'
           WHERE NOT EXISTS (SELECT 1 FROM example_notes WHERE tenant_id = $1 AND title = 'Welcome to Flywheel')""",
        tenant_id,
    )


@hookimpl
def register_model_families():
    from flywheel_example.model import NOTE_REOPEN

    return [NOTE_REOPEN]

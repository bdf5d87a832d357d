"""`flywheel backup DEST` and `flywheel restore SRC`: the database and the object store, with a manifest.

Neither starts the app (no plugin startup hooks, no Redis): a restore targets
an empty database that plugins could not start on, and a backup should touch
nothing. Embedded Postgres is started when DATABASE_URL is unset, as `flywheel
up` would.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import click
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn, TransferSpeedColumn

from flywheel.server.cli.context import fail, run_async, settings_or_exit, state_or_exit
from flywheel.server.cli.preflight import service_problem
from flywheel.server.settings import Settings
from flywheel.server.state import AppState


@click.command()
@click.argument("dest")
def backup(dest: str) -> None:
    """Back up the database and every object of the store to DEST (a new folder or s3://BUCKET/PREFIX).

    FLYWHEEL_SECRET_KEY is not in the backup: keep it; a restore needs it to open sealed secrets.
    """
    from flywheel.server.backup import make_backup

    _run(lambda state, bar: make_backup(state, dest, bar))


@click.command()
@click.argument("src")
@click.option("--without-secrets", is_flag=True,
              help="Restore even if this server's FLYWHEEL_SECRET_KEY does not open the backup's sealed secrets "
                   "(they stay unreadable until entered again).")
def restore(src: str, without_secrets: bool) -> None:
    """Restore a backup from SRC into an EMPTY database and store, verifying every object's SHA-256.

    Refused before anything is written when FLYWHEEL_SECRET_KEY is not the backed-up server's key.
    """
    from flywheel.server.backup import restore_backup

    _run(lambda state, bar: restore_backup(state, src, bar, without_secrets=without_secrets))


class _Bar:
    """The backup's progress on stderr: one bar per step, bytes and speed."""

    def __init__(self, progress: Progress) -> None:
        self.progress, self.task, self.completed, self.lines = progress, None, 0, []

    def step(self, name: str, total: int | None = None) -> None:
        if self.task is None:
            self.progress.start()  # on the first step: a refusal before any prints no empty bar
        self.finish()  # the step before is complete (its size known only now, for pg_dump)
        self.task, self.completed = self.progress.add_task(name, total=total), 0

    def finish(self) -> None:
        if self.task is not None:
            self.progress.update(self.task, total=self.completed or 1, completed=self.completed or 1)

    def advance(self, amount: int) -> None:
        self.completed += amount
        self.progress.update(self.task, completed=self.completed)

    def say(self, line: str) -> None:
        if line.startswith("warning"):
            self.progress.console.print(line, highlight=False)
        else:
            self.lines.append(line)


def _run(work) -> None:
    settings = settings_or_exit()

    async def go() -> list[str]:
        async with _target(settings) as state:
            progress = Progress(TextColumn("{task.description:>18}"), BarColumn(), DownloadColumn(),
                                TransferSpeedColumn(), TimeElapsedColumn(), console=Console(stderr=True))
            bar = _Bar(progress)
            try:
                await work(state, bar)
                bar.finish()
            finally:
                progress.stop()
            return bar.lines

    from flywheel.server.backup import BackupError, BackupRefused

    try:
        lines = run_async(go())
    except BackupRefused as exc:
        fail(exc)
    except BackupError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    if lines is None:  # Ctrl-C
        sys.exit(130)
    for line in lines:
        click.echo(line)


@asynccontextmanager
async def _target(settings: Settings) -> AsyncIterator[AppState]:
    """An AppState that is not started (plugins, migrations, store URL), with Postgres reachable."""
    services = None
    if not settings.database_url:
        from flywheel.server.cli.embedded_up import start_embedded

        settings, services = await start_embedded(settings)
    try:
        try:
            conn = await asyncpg.connect(settings.database_url, timeout=10)
        except Exception as exc:
            problem = service_problem(settings, "postgres", exc)
            if problem is None:
                raise
            raise problem from None
        await conn.close()
        yield state_or_exit(settings)
    finally:
        if services is not None:
            await asyncio.to_thread(services.stop)


COMMANDS = [backup, restore]

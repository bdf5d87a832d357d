"""The `flywheel` command: run modes, admin commands, and plugins' commands.

Plugins' commands are added to the group at start-up (entry points are
scanned once). Settings errors and plugin errors end with one clear line and
exit code 2.
"""

from __future__ import annotations

import sys

import click

from flywheel.server import __version__
from flywheel.server.cli import admin, backup, events, jobs, models, run
from flywheel.server.settings import Settings, SettingsError, load_settings


class FlywheelGroup(click.Group):
    """Adds plugins' commands lazily, so `flywheel --help` lists them."""

    _loaded = False

    def _load_plugin_commands(self, ctx: click.Context) -> None:
        if self._loaded:
            return
        self._loaded = True
        from flywheel.server.app import build_state

        try:
            settings = load_settings()
        except SettingsError:
            # Listing commands needs no settings: `--help` works with a bad one, and the
            # command that needs it says which (settings_or_exit), with exit code 2.
            settings = Settings()
        try:
            state = build_state(settings, load_entrypoints=True)
        except Exception as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(2)
        ctx.obj = state
        for name, (_, command) in state.contributions.cli_commands.items():
            self.add_command(command, name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._load_plugin_commands(ctx)
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        found = super().get_command(ctx, name)
        if found is None:
            self._load_plugin_commands(ctx)
            found = super().get_command(ctx, name)
        return found


@click.group(cls=FlywheelGroup)
@click.version_option(__version__, prog_name="flywheel")
def cli() -> None:
    """Flywheel: telemetry in, models out, in one server."""


for command in (*run.COMMANDS, *admin.COMMANDS, *events.COMMANDS, *jobs.COMMANDS, *models.COMMANDS,
                *backup.COMMANDS):
    cli.add_command(command)


def main() -> None:
    try:
        cli.main(prog_name="flywheel")
    except SettingsError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)

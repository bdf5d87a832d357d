"""Shared CLI plumbing: settings, state with connections, async entry."""

from __future__ import annotations

import asyncio
import signal
import sys
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import click

from flywheel.server.app import build_state
from flywheel.server.cli.preflight import StartupProblem, check_services
from flywheel.server.hooks import HookError
from flywheel.server.settings import Settings, SettingsError, load_settings
from flywheel.server.state import AppState
from flywheel.server.telemetry import configure_logging


def fail(problem: Exception) -> None:
    """End the command with one line and exit code 2 (a usage or environment problem)."""
    click.echo(f"error: {problem}", err=True)
    sys.exit(2)


def settings_or_exit(**overrides) -> Settings:
    try:
        settings = load_settings(**overrides)
    except SettingsError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    configure_logging(settings)
    return settings


def state_or_exit(settings: Settings) -> AppState:
    try:
        return build_state(settings, load_entrypoints=True)
    except Exception as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


@asynccontextmanager
async def connected(settings: Settings, *, migrate: bool = True, embedded: bool = True,
                    start_plugins: bool = True) -> AsyncIterator[AppState]:
    """A started AppState; starts embedded services when URLs are unset."""
    services = None
    if settings.embedded and embedded:
        from flywheel.server.cli.embedded_up import start_embedded

        settings, services = await start_embedded(settings)
    state = state_or_exit(settings)
    try:
        await check_services(state.settings)  # one line naming a service that cannot be reached
        try:
            await state.start(run_migrations=migrate, start_plugins=start_plugins)
        except HookError as exc:  # a plugin refusing to start says why (e.g. a missing key): one line
            raise StartupProblem(str(exc)) from None
        yield state
    finally:
        await state.stop()
        if services is not None:
            await asyncio.to_thread(services.stop)


def run_async(coro):
    """Run a command's coroutine; Ctrl-C and SIGTERM (docker stop, systemd, kill) both stop it cleanly.

    asyncio answers Ctrl-C by cancelling the command's task, so every
    `finally` runs (embedded Postgres and Redis are stopped, the engine
    drains). SIGTERM's default action would end the process at once: uvicorn
    shuts the server down on it and then raises it again, and the process
    died there with the embedded services still running. It now takes the
    Ctrl-C path.
    """
    # Signal handlers belong to the main thread (a test may invoke a command from another).
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _sigterm_as_ctrl_c) if main else None
    try:
        return asyncio.run(coro)
    except KeyboardInterrupt:
        return None
    except StartupProblem as exc:
        fail(exc)
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)


def _sigterm_as_ctrl_c(signum: int, frame) -> None:
    handler = signal.getsignal(signal.SIGINT)  # asyncio's while it runs: it cancels the main task
    if callable(handler):
        handler(signal.SIGINT, frame)
    else:
        raise KeyboardInterrupt

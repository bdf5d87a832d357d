"""Run modes: `up` (everything in one process), `serve` (API), `worker` (jobs)."""

from __future__ import annotations

import asyncio
import time

import click
import structlog
import uvicorn

from flywheel.server.cli.context import connected, fail, run_async, settings_or_exit
from flywheel.server.cli.preflight import StartupProblem, check_services, port_problem

log = structlog.get_logger("flywheel.cli")


@click.command()
@click.option("--demo", is_flag=True, help="Create a demo tenant and key, and load every plugin's demo data.")
@click.option("--host", help="Interface to listen on [FLYWHEEL_HOST, default 127.0.0.1].")
@click.option("--port", type=int, help="Port to listen on [FLYWHEEL_PORT, default 8000].")
def up(demo: bool, host: str | None, port: int | None) -> None:
    """API, worker and scheduler in one process; embedded services when none are configured."""
    settings = settings_or_exit(host=host, port=port)
    problem = port_problem(settings.host, settings.port)
    if problem is not None:  # before the embedded services, the worker and the demo start
        fail(problem)
    run_async(_up(settings, demo))


async def _up(settings, demo: bool) -> None:
    from flywheel.server import http_timeouts
    from flywheel.server.app import create_app
    from flywheel.server.demo import load_demo
    from flywheel.server.jobs.worker import build_worker
    from flywheel.server.telemetry import configure_tracing

    started = time.perf_counter()
    configure_tracing(settings)
    async with connected(settings) as state:
        if demo:
            await load_demo(state)
        app = create_app(state.settings, state=state)
        worker = build_worker(state, handle_signals=False)
        worker_task = asyncio.create_task(worker.main(), name="arq-worker")
        http = http_timeouts.protocol_class(state.settings.http_header_timeout_s,
                                            state.settings.http_body_timeout_s)
        config = uvicorn.Config(app, host=state.settings.host, port=state.settings.port, log_config=None,
                                access_log=False, lifespan="on", http=http)
        server = uvicorn.Server(config)
        serving = asyncio.create_task(server.serve(), name="http")
        while not server.started and not serving.done():
            await asyncio.sleep(0.02)
        if server.started:
            base = f"http://{state.settings.host}:{state.settings.port}"
            click.echo(f"Flywheel is up at {base} (ready in {time.perf_counter() - started:.2f}s; Ctrl-C stops); "
                       f"console: {base}/console", err=True)
        try:
            await serving
        finally:
            await worker.close()
            worker_task.cancel()
            await asyncio.gather(worker_task, return_exceptions=True)


@click.command()
@click.option("--host", help="Interface to listen on [FLYWHEEL_HOST].")
@click.option("--port", type=int, help="Port to listen on [FLYWHEEL_PORT].")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True, help="HTTP worker processes.")
def serve(host: str | None, port: int | None, workers: int) -> None:
    """The HTTP API only (scale out behind a load balancer). Needs DATABASE_URL and REDIS_URL."""
    from flywheel.server import http_timeouts

    settings = settings_or_exit(host=host, port=port)
    if settings.embedded:
        raise click.UsageError("flywheel serve needs DATABASE_URL and REDIS_URL (flywheel up starts embedded ones)")
    # Checked once here: each worker's failing lifespan would print an ExceptionGroup instead.
    problem = port_problem(settings.host, settings.port)
    if problem is None:
        try:
            asyncio.run(check_services(settings))
        except StartupProblem as exc:
            problem = exc
    if problem is not None:
        fail(problem)
    # Workers are spawned and import the protocol by name; app_from_env sets its timeouts.
    uvicorn.run("flywheel.server.cli.run:app_from_env", factory=True, host=settings.host,
                port=settings.port, workers=workers, log_config=None, access_log=False,
                http=http_timeouts.HTTP_PROTOCOL)


def app_from_env():
    """App factory for `flywheel serve` worker processes."""
    from flywheel.server import http_timeouts
    from flywheel.server.app import create_app
    from flywheel.server.telemetry import configure_tracing

    settings = settings_or_exit()
    configure_tracing(settings)
    http_timeouts.configure(settings)  # this worker's connections (see serve)
    return create_app(settings, load_entrypoints=True)


@click.command()
@click.option("--burst", is_flag=True, help="Run queued jobs, then exit.")
@click.option("--max-jobs", type=click.IntRange(1, 256), default=4, show_default=True)
@click.option("--metrics-port", type=click.IntRange(1, 65535),
              help="Serve this worker's Prometheus metrics (jobs run, job time) on this port.")
def worker(burst: bool, max_jobs: int, metrics_port: int | None) -> None:
    """ARQ workers only: runs jobs and cron jobs. Needs DATABASE_URL and REDIS_URL."""
    settings = settings_or_exit()
    if settings.embedded:
        raise click.UsageError("flywheel worker needs DATABASE_URL and REDIS_URL")
    if metrics_port is not None:
        # A worker has no HTTP API: without this its job counters are never scraped.
        from prometheus_client import start_http_server

        import flywheel.server.jobs.runner  # noqa: F401  (declares the job metrics before the first scrape)

        start_http_server(metrics_port, addr=settings.host)
    run_async(_worker(settings, burst, max_jobs))


async def _worker(settings, burst: bool, max_jobs: int) -> None:
    from flywheel.server.jobs.worker import build_worker
    from flywheel.server.telemetry import configure_tracing

    configure_tracing(settings, service="flywheel-worker")
    async with connected(settings, embedded=False) as state:
        w = build_worker(state, burst=burst, max_jobs=max_jobs)
        try:
            # async_run sets ARQ's main task, which its SIGTERM / SIGINT handler cancels: with a
            # bare main() the handler found no task and the worker went on polling after SIGTERM.
            await w.async_run()
        except asyncio.CancelledError:
            pass
        finally:
            await w.close()


COMMANDS = [up, serve, worker]

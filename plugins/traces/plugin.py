"""The traces plugin's hooks (entry point `traces` in Flywheel's pyproject.toml)."""

from __future__ import annotations

from flywheel.contracts.jobs import JobSpec
from flywheel.contracts.plugins import MigrationSource
from flywheel.plugins.traces import __version__  # noqa: F401  (reported by /v1/plugins)
from flywheel.plugins.traces.events import EVENT_TYPES
from flywheel.plugins.traces.jobs_payload import TraceJob
from flywheel.server.plugin_api import hookimpl


@hookimpl
def register_migrations():
    return [MigrationSource(namespace="traces", package="flywheel.plugins.traces.migrations")]


@hookimpl
def register_event_types():
    return list(EVENT_TYPES)


@hookimpl
def register_contracts():
    """contracts.py's Structs: `flywheel schemas` writes each as `traces.<Struct>`."""
    from flywheel.plugins.traces import contracts
    from flywheel.server.plugin_api import contracts_in

    return contracts_in(contracts)


@hookimpl
def register_routes():
    from flywheel.plugins.traces.api import TraceController

    return [TraceController]


@hookimpl
def register_jobs():
    from flywheel.plugins.traces.judge.job import judge_job
    from flywheel.plugins.traces.qa import qa_job

    return [
        JobSpec(name="traces.qa", func=qa_job, payload=TraceJob, timeout_s=900, max_tries=2,
                description="re-run a finalized trace's tests in the sandbox"),
        JobSpec(name="traces.judge", func=judge_job, payload=TraceJob, timeout_s=600, max_tries=2,
                description="score a finalized trace against the rubric"),
    ]


@hookimpl
def register_cli_commands():
    from flywheel.plugins.traces.cli import traces

    return [traces]


@hookimpl
def register_pages():
    from flywheel.contracts.pages import Page
    from flywheel.plugins.traces.pages import TracePages, trace_list

    return [
        Page(path="/traces", nav_title="Traces", handler=trace_list, order=60,
             templates="flywheel.plugins.traces.templates"),
        Page(path="/traces/{trace_id:uuid}", nav_title="Trace", handler=TracePages, nav=False),
    ]


@hookimpl
async def on_demo(state, tenant_id):
    """The example trace, QA'd in the sandbox and judged, in the background (about a second)."""
    import asyncio

    from flywheel.plugins.traces.demo import seed_demo

    state.extras["traces.demo"] = asyncio.create_task(seed_demo(state, tenant_id))


@hookimpl
async def on_shutdown(state):
    import asyncio

    task = state.extras.pop("traces.demo", None)
    if task is not None and not task.done():
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

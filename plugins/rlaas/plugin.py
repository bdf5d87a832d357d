"""The rlaas plugin's hooks (entry point `rlaas` in Flywheel's pyproject.toml)."""

from __future__ import annotations

from flywheel.contracts.plugins import MigrationSource
from flywheel.plugins.rlaas import __version__  # noqa: F401  (reported by /v1/plugins)
from flywheel.plugins.rlaas.contracts import EVENT_TYPES, Feedback, Interaction, TaskResult
from flywheel.server.plugin_api import hookimpl, subscribe


@hookimpl
def register_migrations():
    return [MigrationSource(namespace="rlaas", package="flywheel.plugins.rlaas.migrations")]


@hookimpl
def register_event_types():
    return list(EVENT_TYPES)


@hookimpl
def register_routes():
    from flywheel.plugins.rlaas.gateway import GatewayController
    from flywheel.plugins.rlaas.interactions_api import InteractionController
    from flywheel.plugins.rlaas.policies_api import PolicyController

    return [GatewayController, PolicyController, InteractionController]


@hookimpl
def register_jobs():
    from flywheel.plugins.rlaas.rebuild import SPEC

    return [SPEC]


@hookimpl
def register_cli_commands():
    from flywheel.plugins.rlaas.cli import rlaas

    return [rlaas]


@hookimpl
@subscribe(Interaction, Feedback, TaskResult)
async def on_events_committed(state, tenant_id, events):
    """Interactions, feedback and task results become rows that the interaction views query."""
    from flywheel.plugins.rlaas.projection import project

    await project(state, tenant_id, events)


@hookimpl
async def list_served_models(state, tenant_id):
    """The routes an active policy answers, for OpenAI clients' `models.list()`."""
    from flywheel.plugins.rlaas.gateway import served_models

    return await served_models(state, tenant_id)


@hookimpl
async def on_startup(state):
    from flywheel.plugins.rlaas.gateway import start_gateway

    await start_gateway(state)


@hookimpl
async def on_demo(state, tenant_id):
    """Policies for `support-draft` and a week of generated interactions, in the background."""
    import asyncio

    from flywheel.plugins.rlaas.demo import seed_demo

    task = state.extras["rlaas.demo"] = asyncio.create_task(seed_demo(state, tenant_id))
    return task  # the core says when every plugin's demo data is in


@hookimpl
async def on_shutdown(state):
    import asyncio

    from flywheel.plugins.rlaas.gateway import stop_gateway

    task = state.extras.pop("rlaas.demo", None)
    if task is not None and not task.done():
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    await stop_gateway(state)

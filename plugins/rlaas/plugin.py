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
    from flywheel.plugins.rlaas.adapters_api import AdapterController
    from flywheel.plugins.rlaas.exports_api import ExportController
    from flywheel.plugins.rlaas.gateway import GatewayController
    from flywheel.plugins.rlaas.interactions_api import InteractionController
    from flywheel.plugins.rlaas.policies_api import PolicyController
    from flywheel.plugins.rlaas.rewards_api import RewardController

    return [GatewayController, PolicyController, InteractionController, RewardController, ExportController,
            AdapterController]


@hookimpl
def register_jobs():
    from flywheel.plugins.rlaas import exports, rewards
    from flywheel.plugins.rlaas.rebuild import SPEC as REBUILD
    from flywheel.plugins.rlaas.trainer import job as train_adapter  # torch and TRL load only when it runs

    return [REBUILD, rewards.SPEC, exports.SPEC, train_adapter.SPEC]


@hookimpl
def register_cron_jobs():
    from flywheel.plugins.rlaas import rewards

    return [rewards.CRON]


@hookimpl
def register_pages():
    from flywheel.contracts.pages import Page
    from flywheel.plugins.rlaas.pages import RlaasPages
    from flywheel.plugins.rlaas.training_pages import TrainingPages

    return [Page(path="/rlaas", nav_title="Policies", handler=RlaasPages, order=40,
                 templates="flywheel.plugins.rlaas.templates"),
            Page(path="/rlaas/interactions", nav_title="Interactions", handler=RlaasPages, order=41),
            Page(path="/rlaas/training", nav_title="Training", handler=TrainingPages, order=42),
            Page(path="/rlaas/adapters/{adapter_id:uuid}", nav_title="Adapter", handler=TrainingPages, nav=False),
            Page(path="/rlaas/compare", nav_title="Compare policies", handler=RlaasPages, nav=False),
            Page(path="/rlaas/policies/{policy_id:uuid}", nav_title="Policy", handler=RlaasPages, nav=False),
            Page(path="/rlaas/interactions/{interaction_id:uuid}", nav_title="Interaction", handler=RlaasPages,
                 nav=False)]


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


@hookimpl
def register_model_families():
    from flywheel.plugins.rlaas.reward_model import FAMILY

    return [FAMILY]

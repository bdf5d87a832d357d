"""The credit plugin's hooks (entry point `credit` in Flywheel's pyproject.toml)."""

from __future__ import annotations

from flywheel.contracts.plugins import MigrationSource
from flywheel.plugins.credit import __version__  # noqa: F401  (reported by /v1/plugins)
from flywheel.server.plugin_api import hookimpl


@hookimpl
def register_migrations():
    return [MigrationSource(namespace="credit", package="flywheel.plugins.credit.migrations")]


@hookimpl
def register_model_families():
    from flywheel.plugins.credit.family import FAMILY

    return [FAMILY]


@hookimpl
def register_jobs():
    from flywheel.plugins.credit.runner import JOBS

    return JOBS


@hookimpl
def register_contracts():
    """contracts.py's Structs: `flywheel schemas` writes each as `credit.<Struct>`."""
    from flywheel.plugins.credit import contracts
    from flywheel.server.plugin_api import contracts_in

    return contracts_in(contracts)


@hookimpl
def register_routes():
    from flywheel.plugins.credit.catalog_api import CatalogController
    from flywheel.plugins.credit.datasets_api import DatasetController
    from flywheel.plugins.credit.runs_api import RunController

    return [DatasetController, CatalogController, RunController]


@hookimpl
async def on_demo(state, tenant_id):
    """A generated applicant dataset, its features and feature set, and one finished run.

    Runs in the background (the server is up meanwhile); a second start finds the dataset and does nothing.
    """
    import asyncio

    from flywheel.plugins.credit.demo import seed_demo

    task = state.extras["credit.demo"] = asyncio.create_task(seed_demo(state, tenant_id))
    return task  # the core says when every plugin's demo data is in


@hookimpl
async def on_shutdown(state):
    """Stop a demo still loading."""
    import asyncio

    task = state.extras.pop("credit.demo", None)
    if task is not None and not task.done():
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@hookimpl
def register_cli_commands():
    from flywheel.plugins.credit.cli import credit

    return [credit]


@hookimpl
def register_pages():
    from flywheel.contracts.pages import Page
    from flywheel.plugins.credit.pages import CreditPages

    return [Page(path="/credit", nav_title="Credit datasets", handler=CreditPages, order=20,
                 templates="flywheel.plugins.credit.templates"),
            Page(path="/credit/feature-sets", nav_title="Feature sets", handler=CreditPages, order=21),
            Page(path="/credit/runs", nav_title="Credit runs", handler=CreditPages, order=22),
            Page(path="/credit/models", nav_title="Credit models", handler=CreditPages, order=23),
            Page(path="/credit/datasets/{dataset_version_id:uuid}", nav_title="Dataset", handler=CreditPages,
                 nav=False),
            Page(path="/credit/runs/{run_id:uuid}", nav_title="Run", handler=CreditPages, nav=False),
            Page(path="/credit/runs/{run_id:uuid}/report", nav_title="Report", handler=CreditPages, nav=False)]

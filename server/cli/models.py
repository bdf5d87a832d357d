"""`flywheel models list|show|activate`: a tenant's model versions, as the API shows them."""

from __future__ import annotations

import click

from flywheel.server.cli.context import connected, settings_or_exit
from flywheel.server.cli.output import json_option, show, show_one
from flywheel.server.cli.tenancy import run_api, tenant_id_of
from flywheel.server.monitoring.cli import monitoring

COLUMNS = [("family", lambda v: v.family), ("version", lambda v: v.version), ("state", lambda v: v.state),
           ("active", lambda v: "yes" if v.active else ""), ("created", lambda v: v.created_at),
           ("metrics", lambda v: _metrics(v.metrics))]


@click.group()
def models() -> None:
    """List, show and activate model versions."""


@models.command("list")
@click.option("--tenant", required=True, help="Tenant name or id.")
@click.option("--family", help="Only this family, e.g. drives.h30.")
@json_option
def models_list(tenant: str, family: str | None, as_json: bool) -> None:
    """Every version of the tenant's models, newest first within each family."""
    settings = settings_or_exit()

    async def go() -> None:
        from flywheel.server.models import registry

        async with connected(settings) as st:
            found = await registry.list_versions(st.db, await tenant_id_of(st, tenant), family)
        show(found, COLUMNS, as_json=as_json, empty="no model versions")

    run_api(go())


@models.command("show")
@click.argument("family")
@click.argument("version", type=click.IntRange(1))
@click.option("--tenant", required=True, help="Tenant name or id.")
@json_option
def models_show(family: str, version: int, tenant: str, as_json: bool) -> None:
    """One version: state, metrics, when it was trained."""
    settings = settings_or_exit()

    async def go() -> None:
        from flywheel.server.models import registry

        async with connected(settings) as st:
            found = await registry.get_version(st.db, await tenant_id_of(st, tenant), family, version)
        show_one(found, as_json=as_json)

    run_api(go())


@models.command("activate")
@click.argument("family")
@click.argument("version", type=click.IntRange(1))
@click.option("--tenant", required=True, help="Tenant name or id.")
@json_option
def models_activate(family: str, version: int, tenant: str, as_json: bool) -> None:
    """Serve VERSION of FAMILY from now on (every replica picks it up within a second)."""
    settings = settings_or_exit()

    async def go() -> None:
        from flywheel.server.models import registry
        from flywheel.server.models.families import family_of

        async with connected(settings) as st:
            family_of(st, family)
            found = await registry.activate(st.db, await tenant_id_of(st, tenant), family, version, by="the CLI")
        show_one(found, as_json=as_json)

    run_api(go())


@models.command("batch-score")
@click.argument("family")
@click.argument("input_prefix")
@click.option("--tenant", required=True, help="Tenant name or id.")
@click.option("--output-prefix", help="Where under batch_scores/ the scores go (default FAMILY/vN/INPUT_PREFIX).")
@click.option("--version", type=click.IntRange(1), help="Score with this ready version (default: the active one).")
@click.option("--keep", "keep_columns", multiple=True, help="An input column to copy beside the scores (repeatable).")
@json_option
def models_batch_score(family: str, input_prefix: str, tenant: str, output_prefix: str | None, version: int | None,
                       keep_columns: tuple[str, ...], as_json: bool) -> None:
    """Queue scoring of every Parquet file under INPUT_PREFIX of the tenant's store, a job per file."""
    settings = settings_or_exit()

    async def go() -> None:
        import msgspec

        from flywheel.contracts.models import TableScoreRequest
        from flywheel.server.errors import InvalidInput
        from flywheel.server.models.batch_scoring import queue_batch_score

        try:
            request = msgspec.convert({"input_prefix": input_prefix, "output_prefix": output_prefix,
                                       "version": version, "keep_columns": list(keep_columns)}, TableScoreRequest)
        except msgspec.ValidationError as exc:
            raise InvalidInput(str(exc)) from None
        async with connected(settings) as st:
            job = await queue_batch_score(st, await tenant_id_of(st, tenant), family, request)
        show_one(job, as_json=as_json)

    run_api(go())


def _metrics(metrics: dict | None) -> str | None:
    if not metrics:
        return None
    shown = [(k, v) for k, v in metrics.items() if isinstance(v, int | float) and not isinstance(v, bool)][:4]
    return ", ".join(f"{k} {v:.3g}" for k, v in shown) or None


models.add_command(monitoring)  # flywheel models monitoring FAMILY (server/monitoring/cli.py)
COMMANDS = [models]

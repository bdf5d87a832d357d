"""`flywheel up --demo`: a demo tenant, an admin key, and every plugin's demo data."""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import time
from pathlib import Path

import click

from flywheel.contracts.tenants import Scope
from flywheel.server.auth import service
from flywheel.server.hooks import call_hook
from flywheel.server.state import AppState

DEMO_TENANT = "demo"
DEMO_LOADING = "core.demo_loading"


async def load_demo(state: AppState) -> Path:
    """Create (or reuse) the demo tenant and its admin key; write them to
    `$FLYWHEEL_DATA_DIR/demo-credentials.json` (mode 0600) and say where."""
    path = state.settings.data_path / "demo-credentials.json"
    db = state.db
    row = await db.fetchrow("SELECT id FROM tenants WHERE name = $1", DEMO_TENANT)
    tenant_id = row["id"] if row else (await service.create_tenant(db, DEMO_TENANT)).id
    key = _saved_key(path, tenant_id)
    if key is None or await state.keys.resolve(db, key) is None:
        created = await service.create_key(db, tenant_id, "demo-admin", [Scope.ADMIN])
        key = created.secret
    base_url = f"http://{state.settings.host}:{state.settings.port}"
    _write_private(path, {"tenant": DEMO_TENANT, "tenant_id": str(tenant_id), "api_key": key, "base_url": base_url})
    started = time.perf_counter()
    loading = await call_hook(state.pm, "on_demo", trace_calls=state.settings.trace_hooks, state=state,
                              tenant_id=tenant_id)
    click.echo(f"Demo tenant {DEMO_TENANT!r}: credentials in {path}", err=True)
    state.extras[DEMO_LOADING] = asyncio.create_task(_announce(loading, started))
    return path


async def _announce(loading: list[tuple[str, object]], started: float) -> None:
    """Say when the demo data plugins load in the background (tasks `on_demo` returned) is all in."""
    background = [(plugin, value) for plugin, value in loading if inspect.isawaitable(value)]
    results = await asyncio.gather(*(value for _, value in background), return_exceptions=True)
    if any(isinstance(result, asyncio.CancelledError) for result in results):
        return  # stopped before it finished (Ctrl-C): the next start completes it
    failed = [plugin for (plugin, _), result in zip(background, results, strict=True)
              if isinstance(result, BaseException)]
    took = time.perf_counter() - started
    if failed:
        click.echo(f"Demo data loaded in {took:.1f}s, except {', '.join(failed)} (see the log)", err=True)
    else:
        click.echo(f"Demo data loaded in {took:.1f}s: the README's examples can run", err=True)


def _saved_key(path: Path, tenant_id) -> str | None:
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return saved.get("api_key") if saved.get("tenant_id") == str(tenant_id) else None


def _write_private(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)

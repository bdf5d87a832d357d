"""`flywheel backup` / `flywheel restore`: a round trip with every built-in plugin's data.

A source app on a database and store of its own gets data from each
plugin (drives fleet, features, a trained model and risks; a credit dataset
and finished run; rlaas policies and a week of interactions as events; the
example trace, QA'd and judged). It is backed up by the real CLI while it
runs, restored into a fresh database and store, and a second app on the
restored ones must score and render every console page as the first does.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest
from route_sweep import protected_routes

from flywheel.server.testing import eventually

FLYWHEEL = str(Path(sys.executable).parent / "flywheel")
END = date(2026, 8, 31)


@dataclass
class Deployment:
    """One app with its database, store and the seeded tenant's key."""

    settings: Any
    app: Any
    client: Any
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def env(self, **extra: str) -> dict[str, str]:
        s = self.settings
        return {**os.environ, "DATABASE_URL": s.database_url, "REDIS_URL": s.redis_url,
                "FLYWHEEL_STORE_URL": s.store_url, "FLYWHEEL_DATA_DIR": s.data_dir, "FLYWHEEL_LOG_LEVEL": "WARNING",
                "FLYWHEEL_SECRET_KEY": s.secret_key or "", **extra}


def settings_for(services, database_url: str, store_url: str, data_dir: Path, secret_key: str):
    from flywheel.server.settings import load_settings

    return load_settings({}, database_url=database_url, redis_url=services.redis_url, store_url=store_url,
                         data_dir=str(data_dir), secret_key=secret_key,
                         queue_name=f"flywheel-backup:{uuid.uuid4().hex[:8]}",
                         allowed_hosts=["testserver", "127.0.0.1", "localhost"])


async def flywheel(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    """Run the CLI without blocking the loop (the source app keeps serving meanwhile)."""
    proc = await asyncio.create_subprocess_exec(FLYWHEEL, *args, env=env, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    return proc.returncode, out.decode(), err.decode()


async def seed_every_plugin(state, client, tenant_id, headers) -> None:
    from flywheel.plugins.credit.demo import seed_demo as credit_demo
    from flywheel.plugins.drives.features import build_features
    from flywheel.plugins.drives.fleet import generate_fleet, load_fleet
    from flywheel.plugins.drives.scoring import score_day
    from flywheel.plugins.rlaas.demo import INTERACTIONS
    from flywheel.plugins.rlaas.demo import seed_demo as rlaas_demo
    from flywheel.plugins.traces.demo import seed_demo as traces_demo
    from flywheel.server.jobs.worker import build_worker

    db = state.db
    await load_fleet(db, tenant_id, generate_fleet(drives=300, days=60, end=END, seed=21))
    await build_features(db, tenant_id)
    r = await client.post("/v1/models/drives.h30/train", json={"split": "time", "auto_activate": True},
                          headers=headers)
    assert r.status_code == 202, r.text
    worker = build_worker(state, burst=True, handle_signals=False, poll_delay=0.05)
    try:
        await worker.main()
    finally:
        await worker.close()
    for day in (END - timedelta(days=1), END):
        await score_day(state, tenant_id, day)
    await asyncio.gather(credit_demo(state, tenant_id), rlaas_demo(state, tenant_id), traces_demo(state, tenant_id))

    async def projected():
        n = await db.fetchval("SELECT count(*) FROM rlaas_interactions WHERE tenant_id = $1", tenant_id)
        return n >= INTERACTIONS or None

    await eventually(projected, timeout=20, what="the rlaas demo's interactions")


@pytest.fixture(scope="module")
async def source(flywheel_services, tmp_path_factory):
    from flywheel.contracts.tenants import Scope
    from flywheel.server.app import create_app
    from flywheel.server.auth import service
    from flywheel.server.secrets import new_key
    from flywheel.server.testing.client import app_client

    root = tmp_path_factory.mktemp("backup-source")
    settings = settings_for(flywheel_services, await flywheel_services.new_database(), f"file://{root / 'store'}",
                            root, new_key())
    app = create_app(settings, load_entrypoints=True)
    async with app_client(app) as client:
        state = app.state.flywheel
        tenant = await service.create_tenant(state.db, f"backup-{uuid.uuid4().hex[:6]}")
        key = (await service.create_key(state.db, tenant.id, "backup", [Scope.ADMIN])).secret
        headers = {"Authorization": f"Bearer {key}"}
        await seed_every_plugin(state, client, tenant.id, headers)
        yield Deployment(settings, app, client, key)


@pytest.fixture(scope="module")
async def folder_backup(source, tmp_path_factory):
    dest = tmp_path_factory.mktemp("backups") / "full"
    code, out, err = await flywheel("backup", str(dest), env=source.env())
    assert code == 0, err
    assert "FLYWHEEL_SECRET_KEY is not in this backup" in out
    return dest


async def restore_into(services, source, backup: str, tmp: Path, *, store_url: str | None = None,
                       secret_key: str | None = None, options: tuple[str, ...] = (), **env):
    """A fresh database and store, the backup restored into them by the CLI; the settings for an app on them.
    The target has the source's secret key unless `secret_key` is given ("" for none)."""
    settings = settings_for(services, await services.new_database(), store_url or f"file://{tmp / 'store'}", tmp,
                            source.settings.secret_key if secret_key is None else secret_key)
    target = Deployment(settings, None, None, source.key)
    code, out, err = await flywheel("restore", backup, *options, env=target.env(**env))
    return target, code, out, err


@pytest.fixture(scope="module")
async def restored(flywheel_services, source, folder_backup, tmp_path_factory):
    from flywheel.server.app import create_app
    from flywheel.server.testing.client import app_client

    target, code, out, err = await restore_into(flywheel_services, source, str(folder_backup),
                                                tmp_path_factory.mktemp("restored"))
    assert code == 0, err
    assert "every one verified" in out and "secret key opens the backup's sealed secrets" in out
    app = create_app(target.settings, load_entrypoints=True)
    async with app_client(app) as client:
        yield Deployment(target.settings, app, client, source.key)


def test_the_manifest_lists_every_object_with_its_sha256_and_no_secret(source, folder_backup):
    import hashlib

    manifest = json.loads((folder_backup / "manifest.json").read_text())
    store = Path(source.settings.store_url.removeprefix("file://"))
    keys = {o["key"]: o for o in manifest["objects"]}
    # Every plugin's objects: drives and credit models, a credit dataset, the trace, the event archive.
    for prefix in ("models/drives.h30/", "datasets/", "traces/", "events/"):
        assert any(prefix in k for k in keys), f"no {prefix} object in the backup: {sorted(keys)[:20]}"
    for key, entry in keys.items():
        data = (folder_backup / "objects" / key).read_bytes()
        assert len(data) == entry["size"] and hashlib.sha256(data).hexdigest() == entry["sha256"], key
        assert (store / key).is_file(), key
    assert {p["name"] for p in manifest["plugins"]} >= {"drives", "credit", "rlaas", "traces"}
    assert {m["namespace"] for m in manifest["migrations"]} >= {"core", "drives", "credit", "rlaas", "traces"}
    assert manifest["store_kind"] == "file" and manifest["database"]["server_version"].startswith("15.")
    text = (folder_backup / "manifest.json").read_text()
    assert source.settings.secret_key not in text and source.settings.database_url not in text
    assert not list(folder_backup.rglob("secret.key"))


async def _is_empty(target: Deployment) -> bool:
    import asyncpg

    conn = await asyncpg.connect(target.settings.database_url)
    try:
        tables = await conn.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
    finally:
        await conn.close()
    store = Path(target.settings.store_url.removeprefix("file://"))
    return tables == 0 and not (store.exists() and any(p.is_file() for p in store.rglob("*")))


async def test_every_plugin_s_rows_come_back(source, restored):
    tables = ["events", "drives_inventory", "drives_features", "drives_risk", "model_versions", "credit_runs",
              "credit_datasets", "rlaas_policies", "rlaas_interactions", "rlaas_rewards", "traces", "jobs"]
    for table in tables:
        before = await source.app.state.flywheel.db.fetchval(f"SELECT count(*) FROM {table}")
        after = await restored.app.state.flywheel.db.fetchval(f"SELECT count(*) FROM {table}")
        assert before > 0 and after == before, f"{table}: {before} rows, {after} after restore"


def feature_row(features: list[dict], shift: float) -> dict:
    values = {"float": 0.5 + shift, "int": int(3 + 10 * shift), "bool": shift > 0.5}
    return {f["name"]: (f.get("categories") or ["x"])[0] if f["type"] == "category" else values[f["type"]]
            for f in features}


async def test_scoring_answers_the_same_after_restore(source, restored):
    families = (await source.client.get("/v1/models/", headers=source.headers)).json()["items"]
    active = [f["name"] for f in families if f["active_version"] is not None]
    assert "drives.h30" in active
    for family in active:
        info = (await source.client.get(f"/v1/models/{family}", headers=source.headers)).json()
        for shift in (0.0, 0.3, 0.9):
            row = feature_row(info["features"], shift)
            a = await source.client.post(f"/v1/models/{family}/score", json=row, headers=source.headers)
            b = await restored.client.post(f"/v1/models/{family}/score", json=row, headers=restored.headers)
            assert a.status_code == b.status_code == 200, (family, a.text, b.text)
            assert a.json() == b.json(), family  # same version, score and margin to the last bit


def page_summary(html: str) -> dict:
    """What a page shows, without what changes per request (tokens, nonces)."""
    html = re.sub(r'(nonce|value)="[^"]*"', "", html)
    return {"title": re.findall(r"<title>(.*?)</title>", html, re.S),
            "h1": re.findall(r"<h1[^>]*>(.*?)</h1>", html, re.S),
            "ids": sorted(set(re.findall(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", html))),
            "rows": html.count("<tr")}


async def test_every_console_page_answers_the_same_after_restore(source, restored):
    from flywheel.server.testing.console import console_client

    pages = [path for method, path, params in protected_routes(source.app, console=True)
             if method == "GET" and not params]
    assert len(pages) >= 8, pages
    async with console_client(source.app, source.key) as a, console_client(restored.app, restored.key) as b:
        shown = {}
        for path in pages:
            before, after = await a.get(path), await b.get(path)
            assert before.status_code == after.status_code, (path, before.status_code, after.status_code)
            if before.status_code == 200:
                summary = page_summary(before.text)
                assert summary == page_summary(after.text), path
                shown[path] = summary
    # Guards the comparison: the pages show the restored data (runs, traces, policies by id), not empty lists.
    assert len(shown) >= 8 and sum(bool(s["ids"]) for s in shown.values()) >= 4, \
        {path: len(s["ids"]) for path, s in shown.items()}


async def test_a_restore_whose_secret_key_does_not_fit_is_refused_before_anything_is_written(
        flywheel_services, source, folder_backup, tmp_path):
    from flywheel.server.secrets import new_key

    check = json.loads((folder_backup / "manifest.json").read_text())["secret_key_check"]
    assert check and source.settings.secret_key not in check  # a sealed token, not the key
    target, code, _, err = await restore_into(flywheel_services, source, str(folder_backup), tmp_path / "wrong",
                                              secret_key=new_key())
    assert code == 2 and "does not open the backup's sealed secrets" in err and "--without-secrets" in err, err
    assert "Traceback" not in err and await _is_empty(target)
    target, code, _, err = await restore_into(flywheel_services, source, str(folder_backup), tmp_path / "none",
                                              secret_key="")
    assert code == 2 and "this server has none" in err and "secret.key" in err, err
    assert await _is_empty(target)


async def test_a_tampered_key_check_is_refused_like_a_wrong_key(flywheel_services, source, folder_backup, tmp_path):
    import shutil

    tampered = tmp_path / "tampered"
    shutil.copytree(folder_backup, tampered)
    manifest = json.loads((tampered / "manifest.json").read_text())
    manifest["secret_key_check"] = "gAAAAAü-not-a-token"
    (tampered / "manifest.json").write_text(json.dumps(manifest))
    target, code, _, err = await restore_into(flywheel_services, source, str(tampered), tmp_path / "into")
    assert code == 2 and "does not open the backup's sealed secrets" in err and "Traceback" not in err, err
    assert await _is_empty(target)


def test_a_rotated_key_list_that_keeps_the_old_key_opens_the_backup_s_secrets(source, folder_backup):
    from flywheel.server.backup import BackupRefused
    from flywheel.server.backup.manifest import decode
    from flywheel.server.backup.secret_check import check_key
    from flywheel.server.secrets import new_key

    manifest = decode((folder_backup / "manifest.json").read_bytes())
    old = source.settings.secret_key
    rotated = msgspec.structs.replace(source.settings, secret_key=f"{new_key()},{old}")
    assert "opens" in check_key(rotated, manifest)
    dropped = msgspec.structs.replace(source.settings, secret_key=new_key())
    with pytest.raises(BackupRefused, match="does not open"):
        check_key(dropped, manifest)


async def test_without_secrets_restores_under_another_key_and_says_the_secrets_stay_sealed(
        flywheel_services, source, folder_backup, tmp_path):
    import asyncpg

    from flywheel.server.errors import Unavailable
    from flywheel.server.secrets import SecretBox, new_key

    other = new_key()
    target, code, out, err = await restore_into(flywheel_services, source, str(folder_backup), tmp_path,
                                                secret_key=other, options=("--without-secrets",))
    assert code == 0 and "every one verified" in out, err
    said = " ".join(err.split())  # the console wraps its warning to the terminal's width
    assert "restoring anyway (--without-secrets)" in said and "stay unreadable" in said, err
    conn = await asyncpg.connect(target.settings.database_url)
    try:
        sealed = await conn.fetchval("SELECT sealed FROM traces_chain_keys LIMIT 1")
    finally:
        await conn.close()
    assert SecretBox([source.settings.secret_key.encode()]).open(sealed)  # restored as it was
    with pytest.raises(Unavailable) as refused:
        SecretBox([other.encode()]).open(sealed)
    assert refused.value.code == "secret_key_wrong"


async def test_a_corrupted_object_is_refused_naming_its_key(flywheel_services, source, folder_backup, tmp_path):
    import shutil

    damaged = tmp_path / "damaged"
    shutil.copytree(folder_backup, damaged)
    key = next(o["key"] for o in json.loads((damaged / "manifest.json").read_text())["objects"]
               if o["key"].endswith("model.onnx"))
    target = damaged / "objects" / key
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    restored, code, _, err = await restore_into(flywheel_services, source, str(damaged), tmp_path / "into")
    assert code == 1 and key in err and "SHA-256" in err, err
    assert await _is_empty(restored), "nothing was left behind: the database and the store are as empty as before"


async def test_a_missing_object_is_refused_naming_its_key(flywheel_services, source, folder_backup, tmp_path):
    import shutil

    damaged = tmp_path / "missing"
    shutil.copytree(folder_backup, damaged)
    key = json.loads((damaged / "manifest.json").read_text())["objects"][0]["key"]
    (damaged / "objects" / key).unlink()
    _, code, _, err = await restore_into(flywheel_services, source, str(damaged), tmp_path / "into")
    assert code == 1 and key in err and "missing" in err, err


async def test_restore_into_a_database_or_store_in_use_is_refused(flywheel_services, source, folder_backup,
                                                                  tmp_path):
    code, _, err = await flywheel("restore", str(folder_backup), env=source.env(
        FLYWHEEL_STORE_URL=f"file://{tmp_path / 'empty-store'}"))
    assert code == 2 and "database (DATABASE_URL) is not empty" in err and "Traceback" not in err, err
    target, code, _, err = await restore_into(flywheel_services, source, str(folder_backup), tmp_path,
                                              store_url=source.settings.store_url)
    assert code == 2 and "object store" in err and "is not empty" in err, err
    import asyncpg

    conn = await asyncpg.connect(target.settings.database_url)
    try:  # refused before pg_restore ran
        assert await conn.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == 0
    finally:
        await conn.close()
    code, _, err = await flywheel("backup", str(folder_backup), env=source.env())
    assert code == 2 and "is not empty" in err, err  # nor is a backup written over another


async def test_a_backup_to_s3_restores_into_an_s3_store(flywheel_services, source, s3_server, tmp_path, monkeypatch):
    from s3_server import BUCKET

    from flywheel.server.store import open_store

    s3 = {**s3_server.env, "FLYWHEEL_S3_ENDPOINT_URL": s3_server.endpoint_url}
    location = f"s3://{BUCKET}/backups/{uuid.uuid4().hex[:8]}"
    code, out, err = await flywheel("backup", location, env=source.env(**s3))
    assert code == 0, err
    store_url = f"s3://{BUCKET}/stores/{uuid.uuid4().hex[:8]}"
    target, code, out, err = await restore_into(flywheel_services, source, location, tmp_path, store_url=store_url,
                                                **s3)
    assert code == 0 and "every one verified" in out, err
    for name, value in s3_server.env.items():  # the test's own S3 client reads the same credentials
        monkeypatch.setenv(name, value)
    store = open_store(store_url, endpoint_url=s3_server.endpoint_url)
    try:
        restored_keys = sorted([info.key async for info in store.list("")])
    finally:
        await store.close()
    manifest = json.loads(await _read_s3(location + "/", "manifest.json", s3_server.endpoint_url))
    assert restored_keys == sorted(o["key"] for o in manifest["objects"]) and restored_keys
    import asyncpg

    conn = await asyncpg.connect(target.settings.database_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM model_versions") == \
            await source.app.state.flywheel.db.fetchval("SELECT count(*) FROM model_versions")
    finally:
        await conn.close()


async def _read_s3(location: str, key: str, endpoint_url: str) -> bytes:
    from flywheel.server.store import open_store

    store = open_store(location, endpoint_url=endpoint_url)
    try:
        return await store.get(key)
    finally:
        await store.close()


async def test_a_backup_from_a_newer_release_is_refused_before_anything_is_written(
        flywheel_services, source, folder_backup, tmp_path):
    import shutil

    newer = tmp_path / "newer"
    shutil.copytree(folder_backup, newer)
    manifest = json.loads((newer / "manifest.json").read_text())
    manifest["migrations"].append({"namespace": "core", "version": 9999, "name": "future", "checksum": "0" * 64})
    (newer / "manifest.json").write_text(json.dumps(manifest))
    target, code, _, err = await restore_into(flywheel_services, source, str(newer), tmp_path / "into")
    assert code == 2 and "core/9999" in err and "newer release" in err, err
    assert not (tmp_path / "into" / "store").exists() or not any((tmp_path / "into" / "store").iterdir())


async def test_pg_tools_of_another_major_version_are_refused_by_name():
    from flywheel.server.backup import BackupRefused
    from flywheel.server.backup.postgres import find_tool, tool_version

    path, version = await find_tool("pg_dump", "15.4")  # the machine's client tools
    assert version.startswith("15.") and await tool_version(path) == version
    with pytest.raises(BackupRefused) as refused:
        await find_tool("pg_dump", "99.1")
    message = str(refused.value)
    assert "pg_dump must be of Postgres 99" in message and f"{path} is {version}" in message
    assert "postgresql-client-99" in message

"""The TypeScript SDK (sdks/typescript, `@flywheel/sdk`) against a real Flywheel over real HTTP.

The SDK's own tests run under Node's test runner (`node --test`), each file in a process
of its own, against a Flywheel this module starts: `live_server`, or for the outage tests
a `Restartable` one that the Node tests stop and start through `Control` (so "the server
is down" means nothing listens on its port). Each Node test reports the event ids it sent;
here they are counted in the database: every one stored exactly once, nothing else
stored for the tenant. The Chromium tests load the built bundle (dist/) in a page and
reload it while the API is unreachable. The generated types are checked against the
schemas `flywheel schemas` writes for the running app.
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from flywheel.server.schemas import contract_schemas
from flywheel.server.testing import eventually
from tests.ts_sdk import SDK, Control, PageServer, Restartable, build_sdk, npm, read_report, run_node

FLYWHEEL = Path(sys.executable).with_name("flywheel")


@pytest.fixture(scope="session")
def sdk() -> Path:
    build_sdk()
    return SDK


async def stored_counts(database, tenant) -> collections.Counter:
    rows = await database.fetch("SELECT event_id::text AS id, count(*) AS n FROM events WHERE tenant_id = $1 "
                                "GROUP BY event_id", tenant.id)
    return collections.Counter({row["id"]: row["n"] for row in rows})


async def assert_each_stored_once(database, tenant, stored: list[str], refused: list[str] = ()) -> None:
    """Every id in `stored` is in the database exactly once, none of `refused`, and nothing else."""
    assert stored and len(stored) == len(set(stored))
    counts = await stored_counts(database, tenant)
    assert {i: counts[i] for i in stored} == dict.fromkeys(stored, 1)
    assert not set(refused) & set(counts)
    assert set(counts) == set(stored), f"stored but not sent: {sorted(set(counts) - set(stored))[:5]}"


async def node_tests(file: str, url: str, tenant, tmp_path: Path, **env: str) -> list[dict]:
    """Run one Node test file; every test in it passed; its report."""
    report = tmp_path / "report.jsonl"
    done = await asyncio.to_thread(run_node, file, {"FLYWHEEL_URL": url, "FLYWHEEL_KEY": tenant.key,
                                                    "FLYWHEEL_REPORT": str(report), **env})
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-8000:]
    passed, total = (int(re.search(rf"^ℹ {what} (\d+)$", output, re.M)[1]) for what in ("pass", "tests"))
    assert passed == total > 0, output[-4000:]
    return read_report(report)


# -- the generated types ------------------------------------------------------------------


def dump_schemas(target: Path) -> Path:
    done = subprocess.run([str(FLYWHEEL), "schemas", "-o", str(target)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return target


@pytest.fixture(scope="session")
def schema_dump(tmp_path_factory) -> Path:
    return dump_schemas(tmp_path_factory.mktemp("schemas") / "schemas")


def generated_files(sdk: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted((sdk / "src" / "generated").iterdir())}


def test_generated_types_match_the_running_servers_schemas(sdk, state, schema_dump):
    dump = schema_dump
    running = contract_schemas(state.contributions, state.pm)  # what the app under test exports
    assert {p.stem: json.loads(p.read_text()) for p in dump.glob("*.json")} == running
    done = npm("run", "check-types", "--", str(dump))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "matches the schemas" in done.stdout
    generated = {p.name for p in (sdk / "src" / "generated").glob("*.ts")}
    assert {"event.rlaas.feedback.ts", "event.rlaas.task_result.ts", "IngestResult.ts", "index.ts"} <= generated


@pytest.mark.parametrize(("change", "expected"), [
    ("field", r"event\.rlaas\.feedback\.ts: differs.*mood"),
    ("new_type", r"event\.rlaas\.mood\.ts: generated, not committed"),
    ("gone", r"event\.traces\.commit\.ts: committed, no longer generated"),
    ("missing_core", r"has no IngestResult"),
    ("clash", r"type Thumbs means different things in event\.rlaas\.feedback and event\.rlaas\.mood"),
])
def test_the_drift_check_fails_when_the_schemas_change(sdk, schema_dump, tmp_path, change, expected):
    dump = Path(shutil.copytree(schema_dump, tmp_path / "schemas"))
    before = generated_files(sdk)
    feedback = dump / "event.rlaas.feedback.json"
    if change == "field":
        schema = json.loads(feedback.read_text())
        schema["$defs"]["Feedback"]["properties"]["mood"] = {"type": "string"}
        feedback.write_text(json.dumps(schema))
    elif change in ("new_type", "clash"):  # another event type, sharing the feedback's signal structs
        schema = json.loads(feedback.read_text())
        schema["$defs"]["Mood"] = {**schema["$defs"].pop("Feedback"), "title": "Mood"}
        schema["$ref"] = "#/$defs/Mood"
        if change == "clash":  # ... or a struct of the same name that is not the same
            schema["$defs"]["Thumbs"]["properties"]["value"]["enum"].append("sideways")
        (dump / "event.rlaas.mood.json").write_text(json.dumps(schema))
    elif change == "gone":
        (dump / "event.traces.commit.json").unlink()
    else:
        (dump / "IngestResult.json").unlink()
    done = npm("run", "check-types", "--", str(dump))
    assert done.returncode != 0
    assert re.search(expected, done.stderr, re.S), done.stderr
    assert generated_files(sdk) == before  # the check only compares: the committed files are left alone


# -- Node ------------------------------------------------------------------------------------


async def test_node_unit_tests(sdk):
    done = await asyncio.to_thread(run_node, "unit.test.mjs", {})
    assert done.returncode == 0, (done.stdout + done.stderr)[-8000:]
    assert re.search(r"^ℹ fail 0$", done.stdout, re.M) and re.search(r"^ℹ pass ([1-9]\d*)$", done.stdout, re.M)


async def test_node_sending(sdk, live_server, tenant, database, tmp_path):
    report = await node_tests("sending.test.mjs", live_server.url, tenant, tmp_path)
    assert [r["test"] for r in report] == ["any type", "batch size", "batch time", "lost answer", "one by one",
                                           "split"]
    await assert_each_stored_once(database, tenant, [i for r in report for i in r["stored"]],
                                  [i for r in report for i in r["refused"]])


async def test_node_retries_honour_retry_after(sdk, live_server, tenant, database, tmp_path):
    report = await node_tests("retry.test.mjs", live_server.url, tenant, tmp_path)
    assert len(report) >= 5
    await assert_each_stored_once(database, tenant, [i for r in report for i in r["stored"]],
                                  [i for r in report for i in r["refused"]])


@pytest.fixture
def restartable(flywheel_settings, flywheel_plugins, client):
    """A Flywheel the Node tests stop and start (through `control.url`); same database as `client`."""
    from flywheel.server.app import create_app

    def make_app():
        if flywheel_plugins is None:
            return create_app(flywheel_settings, load_entrypoints=True)
        return create_app(flywheel_settings, flywheel_plugins)

    server = Restartable(make_app)
    server.start()
    control = Control(server)
    try:
        yield server, control
    finally:
        control.close()
        server.stop()


async def test_node_offline_buffer_survives_an_outage_and_a_restart(sdk, restartable, tenant, database, tmp_path):
    server, control = restartable
    report = await node_tests("offline.test.mjs", server.url, tenant, tmp_path, FLYWHEEL_CONTROL=control.url)
    assert [r["test"] for r in report] == ["sent at exit", "outage", "restart", "exit now", "same key"]
    assert control.calls.count("/stop") >= 3 and server.starts >= 4  # the server really went away and came back
    await assert_each_stored_once(database, tenant, [i for r in report for i in r["stored"]])


# -- Chromium --------------------------------------------------------------------------------


@pytest.fixture
def pages(live_server):
    server = PageServer(live_server.url)
    yield server
    server.close()


async def open_page(page, pages, tenant, store: str, interval: int = 200) -> None:
    await page.goto(f"{pages.url}/?key={tenant.key}&store={store}&interval={interval}")
    await page.wait_for_function("document.getElementById('state').textContent === 'ready'")


TRACK = "n => Array.from({length: n}, (_, i) => fw.track('core.generic', {attributes: {i}}))"


@pytest.mark.parametrize(("store", "kind"), [("auto", "IndexedDB"), ("localstorage", "localStorage")])
async def test_chromium_keeps_events_across_a_reload_while_the_api_is_unreachable(
        sdk, pages, page, tenant, database, store, kind):
    pages.down = True
    await open_page(page, pages, tenant, store)
    assert (await page.evaluate("store.description")).startswith(kind)
    ids = await page.evaluate(TRACK, 10)
    await eventually(lambda: any(p[0] == "reset" for p in pages.posts), timeout=10, what="a failed try")
    # Two more that only wait in memory when the page goes: page hide keeps them.
    ids += await page.evaluate(TRACK, 2)
    await page.reload()
    await page.wait_for_function("document.getElementById('state').textContent === 'ready'")
    assert await page.evaluate("fw.stats.buffered") == 12  # read back from the buffer after the reload
    assert await stored_counts(database, tenant) == collections.Counter()

    pages.down = False
    assert await page.evaluate("fw.flush(10000)") is True
    assert await page.evaluate("fw.stats") == {"sent": 12, "duplicate": 0, "buffered": 0, "dropped": 0,
                                               "retried": 0, "rejected": 0}
    await assert_each_stored_once(database, tenant, ids)
    await page.reload()
    await page.wait_for_function("document.getElementById('state').textContent === 'ready'")
    assert await page.evaluate("fw.stats.buffered") == 0  # acknowledged batches left the buffer


async def test_chromium_sends_what_waits_when_the_page_goes_away(sdk, pages, page, tenant, database):
    await open_page(page, pages, tenant, "auto", interval=60_000)  # nothing would go out for a minute
    ids = await page.evaluate(TRACK, 5)
    await asyncio.sleep(0.3)
    assert pages.posts == []
    await page.goto(f"{pages.url}/other")  # pagehide: the batch goes out with fetch keepalive
    await eventually(lambda: any(p[0] == "forwarded" for p in pages.posts), timeout=10, what="the keepalive send")
    await eventually(lambda: stored_counts(database, tenant), timeout=10, what="the events stored")
    await assert_each_stored_once(database, tenant, ids)

    # Its answer came after the page was gone, so the batch may still be in the buffer: the
    # next load sends it again under the same key, and the server recognises it.
    await open_page(page, pages, tenant, "auto")
    assert await page.evaluate("fw.flush(10000)") is True
    keys = {p[2] for p in pages.posts}
    assert len(keys) == 1, pages.posts
    await assert_each_stored_once(database, tenant, ids)


# -- the README ------------------------------------------------------------------------------


def readme_node_examples() -> list[str]:
    text = (SDK / "README.md").read_text()
    return re.findall(r"<!-- readme-test: node -->\n```js\n(.*?)\n```", text, re.S)


async def test_the_readmes_node_example_runs_as_written(sdk, live_server, tenant, database, tmp_path):
    [example] = readme_node_examples()
    (tmp_path / "quickstart.mjs").write_text(example)
    # As an app that installed the package: node_modules/@flywheel/sdk is the SDK folder.
    (tmp_path / "node_modules" / "@flywheel").mkdir(parents=True)
    (tmp_path / "node_modules" / "@flywheel" / "sdk").symlink_to(sdk, target_is_directory=True)
    done = await asyncio.to_thread(
        subprocess.run, [shutil.which("node"), "quickstart.mjs"], cwd=tmp_path, capture_output=True, text=True,
        timeout=60, env={**os.environ, "FLYWHEEL_URL": live_server.url, "FLYWHEEL_KEY": tenant.key})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "acknowledged: true" in done.stdout
    counts = await stored_counts(database, tenant)
    assert len(counts) == 5 and set(counts.values()) == {1}  # one page view, three feedbacks, one task result
    assert [p.name for p in (tmp_path / ".flywheel-buffer").iterdir()] == []  # acknowledged: nothing left


def test_the_dev_dependencies_are_pinned_and_locked(sdk):
    package = json.loads((sdk / "package.json").read_text())
    lock = json.loads((sdk / "package-lock.json").read_text())
    assert package.get("dependencies", {}) == {}  # nothing at run time: the SDK is fetch and the platform
    for name, version in package["devDependencies"].items():
        assert re.fullmatch(r"\d+\.\d+\.\d+", version), f"{name} is not pinned: {version}"
        assert lock["packages"][f"node_modules/{name}"]["version"] == version
    assert {"node_modules/", "dist/"} <= set((sdk / ".gitignore").read_text().split())

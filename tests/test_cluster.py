"""A multi-process deployment: 2 `flywheel serve` replicas and 2 `flywheel worker`s sharing one
Postgres database, one Redis queue and a real S3 server (SeaweedFS), as real OS processes
(benchmarks/cluster_harness.py starts them).

Checked: every acknowledged event is stored exactly once, also with a replica SIGKILLed mid-load
(the client retries what failed on the other replica, same event ids); a job whose worker is
SIGKILLed completes on the other worker with no duplicate effect; an activation through one
replica reaches the other by NOTIFY, with no restart and no polling; a cron tick runs once however
many workers schedule it.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
import uuid
from collections import Counter

import asyncpg
import httpx
import pytest_asyncio
from ingest_helpers import event
from redis.asyncio import Redis

from benchmarks.cluster_harness import S3, Cluster, kill, stop_all

FAMILY = "example.note_reopen"
ROW = {"length": 1200, "views_7d": 9.5, "has_title": True, "age_days": 3.0, "hour": 14, "edits": 4.0}
BATCH = 100
ACTIVATION_DEADLINE_S = 10.0


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def cluster(flywheel_services, s3_server, tmp_path_factory):
    from s3_server import BUCKET

    c = Cluster(admin_dsn=flywheel_services.admin_dsn, redis_url=flywheel_services.redis_url,
                s3=S3(s3_server.endpoint_url, BUCKET, s3_server.env), scratch=tmp_path_factory.mktemp("cluster"))
    try:
        await asyncio.to_thread(lambda: asyncio.run(c.start()))
        yield c
    finally:
        c.stop()
        await c.drop_database()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def db(cluster):
    conn = await asyncpg.connect(cluster.database_url)
    yield conn
    await conn.close()


# -- ingestion ---------------------------------------------------------------------------------

async def ingest(cluster: Cluster, batches: list[list[dict]], *, kill_after: int | None = None) -> dict:
    """Send every batch, round-robin over the replicas, 16 at a time; a batch that fails (an error or
    no answer) is sent again to the next replica, same event ids, until one answers 200.

    `kill_after`: SIGKILL replica 0 once that many batches are acknowledged.
    """
    acked_by: dict[int, int] = {}
    failures = 0
    killed = asyncio.Event()
    sem = asyncio.Semaphore(16)

    async def send(i: int, batch: list[dict], http: httpx.AsyncClient) -> None:
        nonlocal failures
        async with sem:
            for attempt in range(20):
                index = (i + attempt) % len(cluster.serving)
                try:
                    r = await http.post(f"{cluster.serving[index].url}/v1/events", json=batch,
                                        headers=cluster.headers)
                    if r.status_code == 200:
                        acked_by[index] = acked_by.get(index, 0) + 1
                        if kill_after is not None and sum(acked_by.values()) >= kill_after and not killed.is_set():
                            killed.set()
                            await asyncio.to_thread(kill, cluster.serving[0])
                        return
                except httpx.HTTPError:
                    pass
                failures += 1
            raise AssertionError(f"batch {i} never acknowledged")

    async with httpx.AsyncClient(timeout=10) as http:
        await asyncio.gather(*(send(i, b, http) for i, b in enumerate(batches)))
    return {"acked_by": acked_by, "failures": failures, "killed": killed.is_set()}


async def stored_counts(db, tenant_id: str, ids: list[str]) -> dict[str, int]:
    rows = await db.fetch("""SELECT event_id::text AS id, count(*) AS n FROM events
                             WHERE tenant_id = $1 AND event_id = ANY($2::uuid[]) GROUP BY event_id""",
                          uuid.UUID(tenant_id), ids)
    return {r["id"]: r["n"] for r in rows}


def make_batches(n_events: int) -> tuple[list[list[dict]], list[str]]:
    events = [event(attributes={"i": i}) for i in range(n_events)]
    return [events[i:i + BATCH] for i in range(0, n_events, BATCH)], [e["event_id"] for e in events]


async def test_events_spread_over_two_replicas_are_stored_exactly_once(cluster, db):
    batches, ids = make_batches(3000)
    sent = await ingest(cluster, batches)
    assert set(sent["acked_by"]) == {0, 1} and min(sent["acked_by"].values()) >= 10, sent
    counts = await stored_counts(db, cluster.tenant_id, ids)
    assert len(counts) == len(ids), f"{len(ids) - len(counts)} acknowledged events are missing"
    assert set(counts.values()) == {1}


async def test_a_replica_killed_mid_load_loses_and_duplicates_nothing(cluster, db):
    batches, ids = make_batches(4000)
    sent = await ingest(cluster, batches, kill_after=10)
    assert sent["killed"] and sent["failures"] > 0, sent  # the kill did cut requests off
    assert sent["acked_by"].get(1, 0) > sent["acked_by"].get(0, 0), sent
    # Started again on its data folder: anything it had spooled and acknowledged is replayed.
    await asyncio.to_thread(cluster.restart_replica, 0)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        counts = await stored_counts(db, cluster.tenant_id, ids)
        if len(counts) == len(ids):
            break
        await asyncio.sleep(0.2)
    assert len(counts) == len(ids), f"{len(ids) - len(counts)} acknowledged events are missing"
    assert set(counts.values()) == {1}, "an event retried on the other replica was stored twice"


# -- a worker killed mid-job -------------------------------------------------------------------

async def wait_job(http: httpx.AsyncClient, url: str, job_id: str, headers, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = (await http.get(f"{url}/v1/jobs/{job_id}", headers=headers)).json()
        if job["state"] in ("succeeded", "failed", "cancelled"):
            return job
        await asyncio.sleep(0.2)
    raise AssertionError(f"job {job_id} still {job['state']} after {timeout:.0f} s")


async def test_a_worker_killed_mid_training_is_retried_on_the_other_without_duplicates(cluster, db):
    a, b = cluster.working
    b.proc.send_signal(signal.SIGSTOP)  # so that worker a takes the job, and b is there to take it over
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            r = await http.post(f"{cluster.serving[0].url}/v1/models/{FAMILY}/train", headers=cluster.headers,
                                json={"options": {"rows": 10000}, "num_boost_round": 200, "early_stopping_rounds": 0})
            assert r.status_code == 202, r.text
            job_id = r.json()["id"]
            deadline = time.monotonic() + 30
            while await db.fetchval("SELECT state FROM jobs WHERE id = $1", uuid.UUID(job_id)) != "running":
                assert time.monotonic() < deadline, "the training job never started"
                await asyncio.sleep(0.05)
    finally:
        b.proc.send_signal(signal.SIGCONT)
    redis = Redis.from_url(cluster.redis_url)
    try:  # the claim is short and renewed (FLYWHEEL_JOB_LEASE_S=3 here), not ARQ's 6 h
        assert 0 < await redis.pttl(f"arq:in-progress:{job_id}") <= 3000, "no short claim on the job"
    finally:
        await redis.aclose()
    await asyncio.to_thread(kill, a)  # its claim lapses within 3 s, and worker b takes the job
    async with httpx.AsyncClient(timeout=10) as http:
        job = await wait_job(http, cluster.serving[1].url, job_id, cluster.headers, timeout=90)
        assert job["state"] == "succeeded", job
        assert job["attempts"] == 2, job  # the first worker's try, then the other's
        models = (await http.get(f"{cluster.serving[1].url}/v1/models/", headers=cluster.headers)).json()
    versions = await db.fetch("SELECT version, state FROM model_versions WHERE tenant_id = $1 AND job_id = $2",
                              uuid.UUID(cluster.tenant_id), uuid.UUID(job_id))
    assert [(v["version"], v["state"]) for v in versions] == [(1, "ready")], "the retry made a second version"
    mine = next(f for f in models["items"] if f["name"] == FAMILY)
    assert [v["version"] for v in mine["versions"]] == [1]
    cluster.working[0] = cluster.start_worker(0)


# -- activation reaches every replica ------------------------------------------------------------

async def ready_versions(http: httpx.AsyncClient, cluster: Cluster, wanted: int) -> list[int]:
    """At least `wanted` ready versions of FAMILY, training small ones as needed."""
    def ready(models: dict) -> list[int]:
        fam = next(f for f in models["items"] if f["name"] == FAMILY)
        return sorted(v["version"] for v in fam["versions"] if v["state"] == "ready")

    url = cluster.serving[0].url
    have = ready((await http.get(f"{url}/v1/models/", headers=cluster.headers)).json())
    for _ in range(wanted - len(have)):
        r = await http.post(f"{url}/v1/models/{FAMILY}/train", headers=cluster.headers,
                            json={"options": {"rows": 2000}, "num_boost_round": 30})
        assert r.status_code == 202, r.text
        assert (await wait_job(http, url, r.json()["id"], cluster.headers))["state"] == "succeeded"
    return ready((await http.get(f"{url}/v1/models/", headers=cluster.headers)).json())


async def scored_version(http: httpx.AsyncClient, url: str, headers) -> int:
    r = await http.post(f"{url}/v1/models/{FAMILY}/score", json=ROW, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()["version"]


async def test_an_activation_through_one_replica_serves_on_the_other_without_a_restart(cluster):
    a, b = (p.url for p in cluster.serving)
    async with httpx.AsyncClient(timeout=10) as http:
        first, second = (await ready_versions(http, cluster, 2))[:2]
        for target, via, watch in ((first, a, b), (second, a, b), (first, b, a)):
            r = await http.post(f"{via}/v1/models/{FAMILY}/versions/{target}/activate", headers=cluster.headers)
            assert r.status_code == 200, r.text
            started = time.perf_counter()
            # Each replica loads the new version first, then moves its pointer, when the NOTIFY
            # reaches it (0.01-0.5 s here). Nothing polls, so a lost notification would never
            # arrive; the deadline only bounds the wait on a loaded machine, it is not a target.
            for url in (watch, via):
                while (await scored_version(http, url, cluster.headers)) != target:
                    waited = time.perf_counter() - started
                    assert waited < ACTIVATION_DEADLINE_S, f"{url} still serves the old version after {waited:.1f} s"
                    await asyncio.sleep(0.01)
            print(f"version {target} served by both replicas {1000 * (time.perf_counter() - started):.0f} ms "
                  "after its activation")


async def test_a_cold_read_of_the_pointer_does_not_undo_an_activation_landing_meanwhile(
        client, worker, make_tenant, state, monkeypatch):
    """A replica that has not cached a family yet reads the pointer from Postgres. If an activation
    is notified (and swapped in) while that read is on the wire, the older pointer it returns must
    not be cached over the newer one: it would be served until the next activation.
    (In process: the race needs a hook between the read and its answer.)"""
    from flywheel.server.models import registry

    t = await make_tenant()
    for _ in range(2):
        r = await client.post(f"/v1/models/{FAMILY}/train", headers=t.headers,
                              json={"options": {"rows": 2000}, "num_boost_round": 30})
        assert r.status_code == 202, r.text
    await worker()
    assert (await client.post(f"/v1/models/{FAMILY}/versions/1/activate", headers=t.headers)).status_code == 200
    runtime, key = state.models, (t.id, FAMILY)
    deadline = time.monotonic() + 5
    while runtime.active_in_memory(*key) != 1:  # the listener swapped version 1 in
        assert runtime.listening and time.monotonic() < deadline
        await asyncio.sleep(0.02)
    await runtime.load(t.id, FAMILY, 2)  # loaded already, so its swap is immediate
    runtime._active.pop(key)  # as on a replica that started after version 1 was activated
    read = registry.active_version

    async def read_then_activate(db, tenant_id, family):
        stale = await read(db, tenant_id, family)
        swaps = runtime.swaps
        await registry.activate(state.db, tenant_id, family, 2, by="test")
        while runtime.swaps == swaps:  # version 2 is notified and swapped in before the read answers
            await asyncio.sleep(0.01)
        return stale

    monkeypatch.setattr(registry, "active_version", read_then_activate)
    first = (await client.post(f"/v1/models/{FAMILY}/score", json=ROW, headers=t.headers)).json()
    monkeypatch.setattr(registry, "active_version", read)
    assert first["version"] in (1, 2)  # raced: either is right for the request in flight
    assert runtime.active_in_memory(*key) == 2
    later = (await client.post(f"/v1/models/{FAMILY}/score", json=ROW, headers=t.headers)).json()
    assert later["version"] == 2, "the stale pointer read during the activation was cached"


# -- cron: once per tick ---------------------------------------------------------------------------

async def test_each_cron_tick_runs_once_with_two_workers(cluster, db):
    # Workers whose crons tick every second (benchmarks/cluster_harness.py), on a queue of their own.
    stop_all(cluster.working)
    queue = f"{cluster.queue}-ticks"
    # At DEBUG, ARQ's own lines say when each has started.
    tickers = [cluster.start_worker(10 + i, tick_every_second=True, queue=queue, log_level="DEBUG") for i in range(2)]
    try:
        deadline = time.monotonic() + 60
        while not all("Starting worker" in p.tail(10**6) for p in tickers):
            assert all(p.alive for p in tickers) and time.monotonic() < deadline, [p.tail() for p in tickers]
            await asyncio.sleep(0.2)
        since = await db.fetchval("SELECT now()")  # both schedule every tick from here
        await asyncio.sleep(4)
    finally:
        stop_all(tickers)
    # ARQ names each tick's job by its scheduled time (cron:<name>:<unix ms>), and the worker logs
    # the tick it runs: a tick run twice is the same id in both logs. (Grouping the job rows by the
    # second they were created in miscounts a tick run late beside the next one.)
    lines = [json.loads(line) for p in tickers for line in p.tail(10**7).splitlines()
             if line.startswith("{")]  # the workers log JSON lines
    started = Counter(e["tick"] for e in lines if e.get("event") == "cron tick"
                      and e.get("cron") == "example.count_notes_hourly")
    assert len(started) >= 3, [e["event"] for e in lines[-20:]]  # it ticked...
    assert set(started.values()) == {1}, f"a tick ran more than once: {started}"  # ...once each
    rows = await db.fetchval("SELECT count(*) FROM jobs WHERE name = 'example.count_notes' AND tenant_id IS NULL"
                             " AND created_at > $1", since)
    assert 3 <= rows <= len(started), (rows, started)  # a job row for each run, none for a run that did not happen


async def test_a_worker_stops_on_sigterm(cluster):
    """docker stop, systemd and Kubernetes send SIGTERM: the worker must end, not poll on."""
    w = cluster.start_worker(30, log_level="DEBUG")  # at DEBUG, ARQ says when it has started
    try:
        deadline = time.monotonic() + 60
        while "Starting worker" not in w.tail(10**6):
            assert w.alive and time.monotonic() < deadline, w.tail()
            await asyncio.sleep(0.2)
        await asyncio.sleep(1)
        w.proc.terminate()
        code = await asyncio.to_thread(w.proc.wait, 15)
        assert code == 0, w.tail()
    finally:
        if w.alive:  # it ignored SIGTERM: nothing may outlive the test
            kill(w)

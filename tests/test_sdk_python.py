"""The Python SDK (sdks/python, `flywheel_sdk`) against a real Flywheel over real HTTP.

Flywheel runs as `live_server` (uvicorn on a port). Between the SDK and the
server, where a test needs a fault, sits `Proxy`: a real HTTP server that
forwards `POST /v1/events` or, as the test scripts it, answers 503 with a
Retry-After, forwards a batch but drops the answer, resets the connection
(the server "down"), or refuses batches too large. A port nothing listens
on is a server that is down. What got stored is read back with
`GET /v1/events`, as a user would.
"""

from __future__ import annotations

import asyncio
import collections
import json
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import flywheel_sdk
import httpx
import msgspec
import pytest
from flywheel_sdk import AsyncClient, BufferFull, BufferLocked, Client, ClientClosed, RetryPolicy, parse_retry_after

from flywheel.contracts.events import GenericEvent
from flywheel.plugins.rlaas.contracts import Feedback, TaskResult, Thumbs
from flywheel.server.testing import eventually
from flywheel.server.testing.live import free_port

FAST = {"backoff": 0.01, "max_backoff": 0.05}  # retries that do not make the tests wait


# -- helpers -----------------------------------------------------------------------------


def generic(count: int, start: int = 0) -> list[dict]:
    return [{"type": "core.generic", "event_id": str(uuid.uuid4()), "attributes": {"i": start + i}}
            for i in range(count)]


async def stored(client, tenant) -> collections.Counter:
    """How many times each event_id is stored for the tenant (every page of GET /v1/events)."""
    seen: collections.Counter = collections.Counter()
    cursor = None
    while True:
        params = {"limit": 1000, **({"cursor": cursor} if cursor else {})}
        r = await client.get("/v1/events", params=params, headers=tenant.headers)
        assert r.status_code == 200, r.text
        page = r.json()
        seen.update(item["event_id"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return seen


async def stored_events(client, tenant) -> dict[str, dict]:
    r = await client.get("/v1/events", params={"limit": 1000}, headers=tenant.headers)
    assert r.status_code == 200, r.text
    return {item["event_id"]: item for item in r.json()["items"]}


async def stored_count(client, tenant, count: int) -> collections.Counter:
    async def check():
        ids = await stored(client, tenant)
        return ids if len(ids) >= count else None

    return await eventually(check, timeout=20, what=f"{count} events stored")


def buffer_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix == ".json")


def dead_url() -> str:
    return f"http://127.0.0.1:{free_port()}"  # nothing listens: connections are refused


@dataclass
class Seen:
    at: float
    key: str | None
    count: int
    action: str
    status: int | None = None
    replayed: str | None = None


class Proxy:
    """A real HTTP server in front of Flywheel that does to batches what the test says.

    `actions` are used one per `POST /v1/events`, then `default`: "forward",
    "drop" (forward, then close the connection without an answer), "reset"
    (close it without forwarding: the server is down), or (status, headers)
    to answer that instead (a header value may be a function, called when
    answering). `max_events`: batches larger get 413.
    """

    def __init__(self, target: str) -> None:
        self.actions: collections.deque = collections.deque()
        self.default: str | tuple = "forward"
        self.max_events: int | None = None
        self.seen: list[Seen] = []
        self.upstream = httpx.Client(base_url=target, timeout=30)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Proxy:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.upstream.close()

    def _next(self, count: int) -> str | tuple:
        if self.actions:
            return self.actions.popleft()
        if self.max_events is not None and count > self.max_events:
            return (413, {})
        return self.default

    def _handler(self):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                action = proxy._next(len(json.loads(body)))
                seen = Seen(time.monotonic(), self.headers.get("Idempotency-Key"), len(json.loads(body)),
                            action if isinstance(action, str) else "status")
                proxy.seen.append(seen)
                if action == "reset":
                    self.close_connection = True
                    return
                if isinstance(action, tuple):
                    status, headers = action
                    self._answer(status, json.dumps({"status": status, "code": "test", "message": "no"}).encode(),
                                 "application/json", headers)
                    seen.status = status
                    return
                forwarded = proxy.upstream.post("/v1/events", content=body, headers={
                    name: value for name, value in self.headers.items()
                    if name.lower() in ("authorization", "content-type", "idempotency-key")})
                seen.status, seen.replayed = forwarded.status_code, forwarded.headers.get("idempotent-replayed")
                if action == "drop":  # stored upstream, but the client never hears of it
                    self.close_connection = True
                    return
                self._answer(forwarded.status_code, forwarded.content,
                             forwarded.headers.get("content-type", "application/json"), {})

            def _answer(self, status: int, content: bytes, content_type: str, headers: dict) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(content)))
                for name, value in headers.items():
                    self.send_header(name, value() if callable(value) else value)
                self.end_headers()
                self.wfile.write(content)

        return Handler


@pytest.fixture
def proxy(live_server):
    with Proxy(live_server.url) as p:
        yield p


# -- sending ------------------------------------------------------------------------------


async def test_sync_client_stores_events_of_any_type(client, tenant, live_server):
    struct = GenericEvent(event_id=uuid.uuid4(), ts=datetime.now(UTC), attributes={"from": "struct"})
    feedback = Feedback(event_id=uuid.uuid4(), ts=datetime.now(UTC), interaction_id=uuid.uuid4(),
                        signal=Thumbs(value="down"))  # a plugin's event type, as its own Struct
    with Client(live_server.url, tenant.key) as fw:
        ids = [fw.send({"type": "core.generic", "subject_id": "s-1", "attributes": {"n": 1}}),  # id and ts filled in
               fw.send(struct), fw.send(feedback)]
        assert await asyncio.to_thread(fw.flush, 10) is True
        assert (fw.stats.sent, fw.stats.buffered, fw.stats.duplicate) == (3, 0, 0)
    assert ids[1:] == [str(struct.event_id), str(feedback.event_id)]
    events = await stored_events(client, tenant)
    assert set(events) == set(ids)
    assert events[ids[0]]["subject_id"] == "s-1" and events[ids[0]]["type"] == "core.generic"
    assert events[ids[2]]["type"] == "rlaas.feedback"


async def test_async_client_stores_events(client, tenant, live_server):
    async with AsyncClient(live_server.url, tenant.key, flush_interval=0.05) as fw:
        ids = [await fw.send(event) for event in generic(5)]
        assert await fw.flush(timeout=10) is True
        assert fw.stats.sent == 5
    assert set(await stored(client, tenant)) == set(ids)
    with pytest.raises(ClientClosed):
        await fw.send(generic(1)[0])


async def test_batches_by_count_before_the_interval(client, tenant, proxy):
    fw = Client(proxy.url, tenant.key, batch_size=3, flush_interval=60)
    events = generic(7)
    for event in events:
        fw.send(event)
    await eventually(lambda: len(proxy.seen) >= 2, timeout=10, what="two batches")
    await asyncio.sleep(0.3)  # the seventh event waits for a full batch, or the interval, or close
    assert [s.count for s in proxy.seen] == [3, 3]
    # The proxy saw the second batch before forwarding it: wait for the server to have stored it.
    assert set(await stored_count(client, tenant, 6)) == {e["event_id"] for e in events[:6]}
    await asyncio.to_thread(fw.close)
    assert [s.count for s in proxy.seen] == [3, 3, 1]  # close flushes
    assert len(await stored(client, tenant)) == 7


async def test_batches_by_time(client, tenant, proxy):
    fw = Client(proxy.url, tenant.key, batch_size=100, flush_interval=0.5)
    started = time.monotonic()
    fw.send(generic(1)[0])
    fw.send(generic(1)[0])
    await eventually(lambda: proxy.seen, timeout=10, what="a batch")
    waited = proxy.seen[0].at - started
    assert 0.49 <= waited < 3, waited  # not before the interval, soon after it
    assert proxy.seen[0].count == 2
    await asyncio.to_thread(fw.close)
    assert len(await stored(client, tenant)) == 2


async def test_an_event_struct_needs_its_type_tag(live_server, tenant):
    class Untagged(msgspec.Struct):
        event_id: str

    with Client(live_server.url, tenant.key) as fw:
        with pytest.raises(TypeError, match="not an event type"):
            fw.send(Untagged("x"))
        with pytest.raises(ValueError, match="needs a 'type'"):
            fw.send({"attributes": {}})
        with pytest.raises(ValueError, match="max_batch_bytes"):
            fw.send({"type": "core.generic", "attributes": {"big": "x" * (2 << 20)}})


# -- retries ------------------------------------------------------------------------------


def _in_two_seconds() -> str:
    return format_datetime(datetime.now(UTC) + timedelta(seconds=2), usegmt=True)


@pytest.mark.parametrize(("status", "retry_after", "least"), [
    (503, lambda: "1", 0.99),
    (429, lambda: "1", 0.99),
    (503, _in_two_seconds, 0.95),  # an HTTP date has whole seconds: between 1 and 2 s from when it is sent
])
async def test_retries_wait_for_retry_after(client, tenant, proxy, status, retry_after, least):
    proxy.actions.append((status, {"Retry-After": retry_after}))
    fw = Client(proxy.url, tenant.key, **FAST)  # without Retry-After, the retry would come in under 0.05 s
    event_id = fw.send(generic(1)[0])
    assert await asyncio.to_thread(fw.flush, 15) is True
    first, second = proxy.seen
    assert (first.status, second.status) == (status, 200)
    assert least <= second.at - first.at < 3
    assert first.key == second.key and first.key  # one batch, one Idempotency-Key
    assert fw.stats.retried == 1 and fw.stats.sent == 1
    await asyncio.to_thread(fw.close)
    assert list(await stored(client, tenant)) == [event_id]


def test_backoff_is_exponential_with_full_jitter_and_retry_after_as_floor():
    policy = RetryPolicy(max_retries=5, backoff=0.5, max_backoff=4.0)
    for retry, ceiling in enumerate([0.5, 1, 2, 4, 4, 4]):
        waits = [policy.delay(retry) for _ in range(300)]
        assert 0 <= min(waits) and max(waits) <= ceiling
        assert max(waits) > ceiling * 0.7 and min(waits) < ceiling * 0.3  # spread over the whole range
    assert all(policy.delay(0, retry_after=3.0) >= 3.0 for _ in range(50))
    assert all(2.0 <= policy.probe_delay(3) <= 4.0 for _ in range(50))  # half fixed, half jitter


def test_retry_after_parsing():
    now = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    assert parse_retry_after("5") == 5.0
    assert parse_retry_after(" 0.5 ") == 0.5
    assert parse_retry_after("Wed, 04 Mar 2026 05:06:17 GMT", now=now) == 10.0
    assert parse_retry_after("Wed, 04 Mar 2026 05:06:00 GMT", now=now) == 0.0  # past: no wait
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None and parse_retry_after("nan") is None
    assert parse_retry_after("99999999") == 86_400.0


async def test_a_lost_answer_is_retried_under_the_same_key_and_not_stored_twice(client, tenant, proxy):
    proxy.actions.append("drop")  # the server stores the batch; the answer never reaches the client
    fw = Client(proxy.url, tenant.key, **FAST)
    ids = [fw.send(event) for event in generic(5)]
    assert await asyncio.to_thread(fw.flush, 15) is True
    first, second = proxy.seen
    assert first.status == 200 and first.key == second.key
    assert second.replayed == "true"  # the server answered from its idempotency record
    stats = fw.stats
    assert (stats.sent, stats.duplicate, stats.retried) == (5, 0, 1)
    await asyncio.to_thread(fw.close)
    assert await stored(client, tenant) == collections.Counter(ids)


async def test_a_client_error_is_rejected_at_once_not_retried(live_server):
    rejected = []
    fw = Client(live_server.url, "fw_not_a_real_key", on_rejected=rejected.extend, **FAST)
    ids = [fw.send(event) for event in generic(2)]
    assert await asyncio.to_thread(fw.flush, 10) is True  # nothing left to send: it was refused
    await asyncio.to_thread(fw.close)
    assert [r.event_id for r in rejected] == ids
    assert {r.status for r in rejected} == {401}
    assert (fw.stats.rejected, fw.stats.retried, fw.stats.sent) == (2, 0, 0)


async def test_events_rejected_one_by_one_go_to_on_rejected(client, tenant, live_server):
    rejected = []
    good = generic(2)
    bad = {"type": "nope.unknown", "event_id": str(uuid.uuid4())}
    with Client(live_server.url, tenant.key, on_rejected=rejected.extend) as fw:
        for event in (good[0], bad, good[1]):
            fw.send(event)
        assert await asyncio.to_thread(fw.flush, 10) is True
        assert (fw.stats.sent, fw.stats.rejected) == (2, 1)
    [rejection] = rejected
    assert rejection.event_id == bad["event_id"] and rejection.code == "unknown_type"
    assert rejection.event["type"] == "nope.unknown" and rejection.status == 200
    assert set(await stored(client, tenant)) == {e["event_id"] for e in good}


async def test_a_batch_too_large_for_the_server_is_split(client, tenant, proxy):
    proxy.max_events = 3
    fw = Client(proxy.url, tenant.key, batch_size=8, **FAST)
    ids = [fw.send(event) for event in generic(8)]
    assert await asyncio.to_thread(fw.flush, 15) is True
    await asyncio.to_thread(fw.close)
    assert [s.count for s in proxy.seen] == [8, 4, 2, 2, 4, 2, 2]
    assert len({s.key for s in proxy.seen}) == 7  # a split batch was never stored: its halves get new keys
    assert await stored(client, tenant) == collections.Counter(ids)
    assert (fw.stats.sent, fw.stats.rejected) == (8, 0)


# -- the offline buffer ---------------------------------------------------------------------

SEND_AND_EXIT = """
import json, sys
from flywheel_sdk import Client

url, key, folder, events = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
fw = Client(url, key, buffer_path=folder, batch_size=7, max_retries=1, backoff=0.01, max_backoff=0.05)
for event in events:
    fw.send(event)
# No close(): it runs at exit, sends what waits or, the server down, writes it to the buffer folder.
"""


def send_and_exit(url: str, key: str, folder: Path, events: list[dict]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", SEND_AND_EXIT, url, key, str(folder), json.dumps(events)],
                          capture_output=True, text=True, timeout=60)


async def test_what_waits_is_sent_at_exit(client, tenant, live_server, tmp_path):
    events = generic(10)
    done = await asyncio.to_thread(send_and_exit, live_server.url, tenant.key, tmp_path, events)
    assert done.returncode == 0, done.stderr
    assert await stored(client, tenant) == collections.Counter(e["event_id"] for e in events)
    assert buffer_files(tmp_path) == []


async def test_an_outage_and_a_restart_lose_nothing_and_send_nothing_twice(client, tenant, live_server, tmp_path):
    folder = tmp_path / "buffer"
    events = generic(25)
    done = await asyncio.to_thread(send_and_exit, dead_url(), tenant.key, folder, events)
    assert done.returncode == 0, done.stderr
    files = buffer_files(folder)
    assert sum(int(f.name.split("-")[1]) for f in files) == 25 and len(files) == 4  # 7 + 7 + 7 + 4
    assert len(await stored(client, tenant)) == 0

    # The process is gone; a new one with the same folder, the server back.
    fw = Client(live_server.url, tenant.key, buffer_path=folder)
    assert await asyncio.to_thread(fw.flush, 15) is True
    stats = fw.stats
    assert (stats.sent, stats.duplicate, stats.buffered, stats.dropped) == (25, 0, 0, 0)
    await asyncio.to_thread(fw.close)
    assert await stored(client, tenant) == collections.Counter(e["event_id"] for e in events)
    assert buffer_files(folder) == []


async def test_the_buffer_drains_when_the_server_is_back(client, tenant, proxy, tmp_path):
    proxy.default = "reset"  # the server is down
    fw = Client(proxy.url, tenant.key, buffer_path=tmp_path, batch_size=4, flush_interval=0.05, max_retries=1,
                **FAST)
    ids = [fw.send(event) for event in generic(10)]
    await eventually(lambda: sum(int(f.name.split("-")[1]) for f in buffer_files(tmp_path)) == 10, timeout=10,
                     what="10 events in the buffer folder")
    assert fw.stats.buffered == 10 and len(await stored(client, tenant)) == 0
    proxy.default = "forward"
    await eventually(lambda: fw.stats.buffered == 0, timeout=10, what="the buffer drained")
    assert buffer_files(tmp_path) == []
    assert await stored(client, tenant) == collections.Counter(ids)
    assert (fw.stats.sent, fw.stats.duplicate) == (10, 0)
    await asyncio.to_thread(fw.close)


async def test_a_batch_stored_before_a_restart_keeps_its_key(client, tenant, proxy, tmp_path):
    proxy.default = "drop"  # every batch reaches the server; no answer reaches the client
    fw = Client(proxy.url, tenant.key, buffer_path=tmp_path, max_retries=0, **FAST)
    ids = [fw.send(event) for event in generic(5)]
    await asyncio.to_thread(fw.close)
    [file] = buffer_files(tmp_path)
    key = proxy.seen[0].key
    assert key in file.name

    proxy.default = "forward"
    again = Client(proxy.url, tenant.key, buffer_path=tmp_path)
    assert await asyncio.to_thread(again.flush, 15) is True
    await asyncio.to_thread(again.close)
    assert proxy.seen[-1].key == key and proxy.seen[-1].replayed == "true"
    assert (again.stats.sent, again.stats.duplicate) == (5, 0)  # the server recognised the batch
    assert await stored(client, tenant) == collections.Counter(ids)


async def test_async_client_buffers_and_a_sync_client_drains(client, tenant, live_server, tmp_path):
    fw = AsyncClient(dead_url(), tenant.key, buffer_path=tmp_path, max_retries=1, **FAST)
    ids = [await fw.send(event) for event in generic(6)]
    await fw.aclose()
    assert fw.stats.buffered == 6 and len(buffer_files(tmp_path)) == 1
    with Client(live_server.url, tenant.key, buffer_path=tmp_path) as again:
        assert await asyncio.to_thread(again.flush, 15) is True
    assert await stored(client, tenant) == collections.Counter(ids)


def test_one_buffer_folder_one_client(tmp_path):
    with Client(dead_url(), "key", buffer_path=tmp_path, max_retries=0, **FAST):
        with pytest.raises(BufferLocked):
            Client(dead_url(), "key", buffer_path=tmp_path)
    Client(dead_url(), "key", buffer_path=tmp_path).close()  # free again once closed


# -- a full buffer -------------------------------------------------------------------------


def test_full_buffer_raise(tmp_path):
    fw = Client(dead_url(), "key", batch_size=5, max_buffer_events=10, on_full="raise", max_retries=0, **FAST)
    for event in generic(10):
        fw.send(event)
    with pytest.raises(BufferFull):
        fw.send(generic(1)[0])
    assert fw.stats.buffered == 10
    fw.close(timeout=1)
    assert fw.stats.dropped == 10  # no buffer folder: what the server never got is counted, and logged


async def test_full_buffer_drop_oldest(client, tenant, live_server, tmp_path):
    fw = Client(dead_url(), tenant.key, buffer_path=tmp_path, batch_size=5, max_buffer_events=10, max_retries=0,
                **FAST)
    events = generic(30)
    for event in events:
        fw.send(event)
    stats = fw.stats
    assert stats.buffered <= 10 and stats.dropped + stats.buffered == 30 and stats.dropped >= 20
    await asyncio.to_thread(fw.close)
    with Client(live_server.url, tenant.key, buffer_path=tmp_path) as again:
        assert await asyncio.to_thread(again.flush, 15) is True
    kept = await stored(client, tenant)
    assert len(kept) == 30 - stats.dropped and set(kept) <= {e["event_id"] for e in events}
    assert events[-1]["event_id"] in kept  # the newest are kept


async def test_full_buffer_block_waits_for_room(client, tenant, proxy):
    proxy.default = "reset"
    fw = Client(proxy.url, tenant.key, batch_size=5, max_buffer_events=10, on_full="block", max_retries=0,
                **FAST)
    events = generic(11)
    for event in events[:10]:
        fw.send(event)
    blocked = threading.Thread(target=fw.send, args=(events[10],))
    blocked.start()
    await asyncio.sleep(0.5)
    assert blocked.is_alive()  # waiting for room
    proxy.default = "forward"
    await asyncio.to_thread(blocked.join, 15)
    assert not blocked.is_alive()
    await asyncio.to_thread(fw.close)
    assert len(await stored(client, tenant)) == 11


def test_full_buffer_block_has_a_timeout():
    fw = Client(dead_url(), "key", batch_size=1, max_buffer_events=1, on_full="block", block_timeout=0.2,
                max_retries=0, **FAST)
    fw.send(generic(1)[0])
    started = time.monotonic()
    with pytest.raises(BufferFull):
        fw.send(generic(1)[0])
    assert 0.19 <= time.monotonic() - started < 2
    fw.close(timeout=1)


# -- rlaas helpers ---------------------------------------------------------------------------


async def test_rlaas_feedback_and_task_results_are_accepted(client, tenant, live_server):
    interaction, other = uuid.uuid4(), uuid.uuid4()
    async with AsyncClient(live_server.url, tenant.key) as fw:
        ids = [await fw.feedback(interaction, thumbs="up", subject_id="u-1"),
               await fw.feedback(str(interaction), rating=4, comment="fine"),
               await fw.feedback(interaction, corrected_text="The fixed answer."),
               await fw.feedback(interaction, compare_with=other, preferred="other"),
               await fw.task_result(interaction, "ticket.resolve", "success", score=0.75, details={"turns": 3})]
        assert await fw.flush(timeout=10) is True
        assert (fw.stats.sent, fw.stats.rejected) == (5, 0)
    events = await stored_events(client, tenant)
    decoded = [msgspec.convert(events[i]["event"], Feedback | TaskResult) for i in ids]
    assert [type(e.signal).__name__ for e in decoded[:4]] == ["Thumbs", "Rating", "Edit", "Comparison"]
    assert decoded[0].signal.value == "up" and decoded[1].signal.value == 4 and decoded[1].comment == "fine"
    assert decoded[3].signal.other_interaction_id == other and decoded[3].signal.preferred == "other"
    result = decoded[4]
    assert (result.interaction_id, result.task, result.outcome, result.score) == (interaction, "ticket.resolve",
                                                                                  "success", 0.75)
    assert events[ids[0]]["subject_id"] == "u-1"


@pytest.mark.parametrize(("kwargs", "message"), [
    ({}, "exactly one"),
    ({"thumbs": "up", "rating": 3}, "exactly one"),
    ({"thumbs": "sideways"}, "'up' or 'down'"),
    ({"rating": 6}, "1 to 5"),
    ({"compare_with": uuid.uuid4()}, "preferred="),
    ({"rating": 3, "preferred": "this"}, "goes with compare_with"),
])
def test_feedback_is_checked_before_it_is_sent(kwargs, message):
    with pytest.raises(ValueError, match=message):
        flywheel_sdk.feedback_event(uuid.uuid4(), **kwargs)


def test_task_results_and_ids_are_checked():
    with pytest.raises(ValueError, match="outcome"):
        flywheel_sdk.task_result_event(uuid.uuid4(), "t", "won")
    with pytest.raises(ValueError, match="interaction_id is a UUID"):
        flywheel_sdk.feedback_event("chatcmpl-123", thumbs="up")
    with pytest.raises(TypeError, match="unexpected keyword"):
        flywheel_sdk.feedback_event(uuid.uuid4(), thumbs="up", subjectid="x")


def test_the_sdk_does_not_import_the_server():
    code = ("import sys, flywheel_sdk; "
            "print([m for m in sys.modules if m == 'flywheel' or m.startswith(('flywheel.', 'litestar'))])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "[]"

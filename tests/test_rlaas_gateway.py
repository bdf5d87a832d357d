"""The OpenAI-compatible gateway, driven by the real `openai` client over real HTTP.

Flywheel runs as `live_server` (uvicorn on a port); upstreams are
`FakeUpstream`s (tests/openai_upstream.py), real HTTP servers speaking
OpenAI's API. Policies are created through the policies API, as a user would.
"""

from __future__ import annotations

import asyncio
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import httpx
import openai
import pytest
import pytest_asyncio

from flywheel.plugins.rlaas.routing import in_canary
from flywheel.plugins.rlaas.users import user_hash
from flywheel.server.testing import eventually
from tests.openai_upstream import UpstreamServer

pytestmark = pytest.mark.asyncio(loop_scope="session")
UPSTREAM_KEY = "sk-upstream-7f3a9c-never-shown"


@pytest_asyncio.fixture(loop_scope="session")
async def upstream():
    async with UpstreamServer() as fake:
        yield fake


@pytest_asyncio.fixture(loop_scope="session")
async def second_upstream():
    async with UpstreamServer() as fake:
        yield fake


async def make_policy(client, tenant, route: str, name: str, base_url: str, *, status: str = "active",
                      share: float | None = None, model: str = "upstream-model", **extra) -> dict:
    body = {"route": route, "name": name, "status": status,
            "upstream": {"base_url": base_url, "model": model, "api_key": UPSTREAM_KEY, **extra}}
    if share is not None:
        body["canary_share"] = share
    r = await client.post("/v1/rlaas/policies", json=body, headers=tenant.headers)
    assert r.status_code == 201, r.text
    return r.json()


def openai_client(live_server, tenant) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=live_server.url + "/v1", api_key=tenant.key, max_retries=0)


async def interactions(client, tenant, **params) -> list[dict]:
    r = await client.get("/v1/rlaas/interactions", params=params, headers=tenant.headers)
    assert r.status_code == 200, r.text
    return r.json()["items"]


async def recorded(client, tenant, count: int, **params) -> list[dict]:
    async def check():
        items = await interactions(client, tenant, **params)
        return items if len(items) >= count else None

    return await eventually(check, timeout=15, what=f"{count} interactions recorded")


async def test_plain_chat_passes_unknown_fields_and_records(client, tenant, live_server, upstream):
    await make_policy(client, tenant, "support-draft", "gpt-small", upstream.base_url)
    oai = openai_client(live_server, tenant)
    raw = await oai.chat.completions.with_raw_response.create(
        model="support-draft", messages=[{"role": "user", "content": "hi there"}], user="alice@example.com",
        seed=7, response_format={"type": "text"}, extra_body={"vendor_knob": {"depth": 2}})
    answer = raw.parse()
    assert answer.choices[0].message.content == "echo: hi there"
    interaction_id = raw.headers["x-flywheel-interaction-id"]
    assert raw.headers["x-flywheel-policy"] == "gpt-small/1"
    assert raw.headers["x-request-id"] == "req-123"
    assert "set-cookie" not in raw.headers  # an upstream's cookies stay behind

    sent = upstream.requests[-1]
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert sent.body["model"] == "upstream-model"
    assert sent.body["seed"] == 7 and sent.body["response_format"] == {"type": "text"}
    assert sent.body["vendor_knob"] == {"depth": 2} and sent.body["user"] == "alice@example.com"

    [item] = await recorded(client, tenant, 1)
    assert item["interaction_id"] == interaction_id
    assert (item["route"], item["policy"], item["policy_version"]) == ("support-draft", "gpt-small", 1)
    assert (item["prompt_tokens"], item["completion_tokens"], item["status"]) == (11, 4, 200)
    detail = (await client.get(f"/v1/rlaas/interactions/{interaction_id}", headers=tenant.headers)).json()
    assert "alice@example.com" not in str(detail)  # the end user is stored as a hash
    assert detail["request"]["messages"][0]["content"] == "hi there"


async def test_stream_forwards_first_chunk_before_upstream_finishes(client, tenant, live_server, upstream):
    await make_policy(client, tenant, "chat", "streamer", upstream.base_url)
    oai = openai_client(live_server, tenant)
    upstream.gate.clear()  # the upstream sends "Hello", then waits
    stream = await oai.chat.completions.create(model="chat", messages=[{"role": "user", "content": "x"}],
                                               stream=True)
    pieces = []
    async with asyncio.timeout(15):  # a gateway that buffered the stream would wait for ever here
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                pieces.append(chunk.choices[0].delta.content)
                if pieces == ["Hello"]:
                    assert upstream.finished == 0  # the client has the first chunk; the upstream is not done
                    upstream.gate.set()
    assert "".join(pieces) == "Hello world"
    [item] = await recorded(client, tenant, 1)
    assert item["stream"] is True and item["ttft_ms"] is not None and item["ttft_ms"] <= item["latency_ms"]
    assert item["completion_tokens"] == 2 and item["tokens_counted"] is True  # no usage: counted chunks
    detail = (await client.get(f"/v1/rlaas/interactions/{item['interaction_id']}", headers=tenant.headers)).json()
    assert detail["response"]["choices"][0]["message"]["content"] == "Hello world"


async def test_stream_usage_from_upstream(client, tenant, live_server, upstream):
    await make_policy(client, tenant, "chat", "streamer", upstream.base_url)
    stream = await openai_client(live_server, tenant).chat.completions.create(
        model="chat", messages=[{"role": "user", "content": "x"}], stream=True,
        stream_options={"include_usage": True})
    usage = [chunk.usage async for chunk in stream if chunk.usage]
    assert usage[0].total_tokens == 7
    [item] = await recorded(client, tenant, 1)
    assert (item["prompt_tokens"], item["completion_tokens"], item["tokens_counted"]) == (5, 2, False)


async def test_tool_calls_plain_and_streamed(client, tenant, live_server, upstream):
    await make_policy(client, tenant, "agent", "tools", upstream.base_url)
    oai = openai_client(live_server, tenant)
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}}}}]
    answer = await oai.chat.completions.create(model="agent", messages=[{"role": "user", "content": "w?"}],
                                               tools=tools, tool_choice="auto")
    call = answer.choices[0].message.tool_calls[0]
    assert (call.function.name, call.function.arguments) == ("get_weather", '{"city": "Paris"}')
    assert upstream.requests[-1].body["tools"] == tools and upstream.requests[-1].body["tool_choice"] == "auto"

    stream = await oai.chat.completions.create(model="agent", messages=[{"role": "user", "content": "w?"}],
                                               tools=tools, stream=True)
    arguments = "".join([c.choices[0].delta.tool_calls[0].function.arguments async for c in stream
                         if c.choices and c.choices[0].delta.tool_calls])
    assert arguments == '{"city": "Paris"}'
    items = await recorded(client, tenant, 2, policy="tools")
    streamed = next(i for i in items if i["stream"])
    detail = (await client.get(f"/v1/rlaas/interactions/{streamed['interaction_id']}", headers=tenant.headers)).json()
    message = detail["response"]["choices"][0]["message"]
    assert message["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": '{"city": "Paris"}'}


async def test_embeddings_and_models_list(client, tenant, live_server, upstream):
    """Embeddings through a policy; `models.list()` is the core's `GET /v1/models`, whose `data` the
    rlaas plugin fills through the `list_served_models` hook."""
    await make_policy(client, tenant, "embedder", "small-embed", upstream.base_url, model="text-embedding-3-small")
    await make_policy(client, tenant, "not-yet", "shadow-only", upstream.base_url, status="shadow")
    oai = openai_client(live_server, tenant)
    answer = await oai.embeddings.create(model="embedder", input=["one", "two"])
    assert [len(d.embedding) for d in answer.data] == [8, 8]
    assert upstream.requests[-1].body["model"] == "text-embedding-3-small"
    listed = [m.id async for m in oai.models.list()]
    assert listed == ["embedder"]  # only routes an active policy answers
    [item] = await recorded(client, tenant, 1)
    detail = (await client.get(f"/v1/rlaas/interactions/{item['interaction_id']}", headers=tenant.headers)).json()
    assert detail["response"]["data"] == [{"index": 0, "dimensions": 8}, {"index": 1, "dimensions": 8}]


async def test_errors_are_openai_shaped(client, tenant, live_server, upstream):
    await make_policy(client, tenant, "chat", "p", upstream.base_url)
    await make_policy(client, tenant, "strict", "p", upstream.base_url, model="bad-request")
    oai = openai_client(live_server, tenant)
    with pytest.raises(openai.NotFoundError) as missing:
        await oai.chat.completions.create(model="no-such-route", messages=[{"role": "user", "content": "x"}])
    assert "no active policy" in missing.value.message and missing.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError) as refused:  # the upstream's own error, passed through
        await oai.chat.completions.create(model="strict", messages=[{"role": "user", "content": "x"}])
    assert refused.value.code == "context_length_exceeded" and refused.value.param == "messages"
    upstream.status = 503  # an error body that is not OpenAI-shaped gets OpenAI's shape
    with pytest.raises(openai.InternalServerError) as broken:
        await oai.chat.completions.create(model="chat", messages=[{"role": "user", "content": "x"}])
    assert broken.value.status_code == 503 and "upstream exploded" in broken.value.message
    with pytest.raises(openai.AuthenticationError):
        await openai.AsyncOpenAI(base_url=live_server.url + "/v1", api_key="fw_wrong", max_retries=0) \
            .chat.completions.create(model="chat", messages=[{"role": "user", "content": "x"}])
    r = await client.post("/v1/chat/completions", json={"model": "chat", "messages": "nope"}, headers=tenant.headers)
    assert r.status_code in (400, 422) and r.json()["field"] == "$.messages"


async def test_canary_split_and_stickiness(client, tenant, state, upstream, second_upstream):
    """The split over 2,000 users is read from the routing decision itself (the same code the
    gateway runs, on the policies as stored); 300 of them then go through the gateway, which
    must route each one as decided, twice."""
    from flywheel.plugins.rlaas.routing import choose

    await make_policy(client, tenant, "chat", "stable", upstream.base_url)
    await make_policy(client, tenant, "chat", "candidate", second_upstream.base_url, status="canary", share=0.3)
    users = [f"user-{i}" for i in range(2000)]
    decided = [(await choose(state, tenant.id, "chat", user_hash(tenant.id, u))).primary.name for u in users]
    share = decided.count("candidate") / len(users)
    # Binomial sd at n=2000, p=0.3 is 0.0102 (the canary's id is random, so each run draws anew):
    # 4.9 sd either way, outside about once in a million runs.
    assert 0.25 <= share <= 0.35, share

    async def policy_for(user: str) -> str:
        r = await client.post("/v1/chat/completions", headers=tenant.headers,
                              json={"model": "chat", "messages": [{"role": "user", "content": "x"}], "user": user})
        assert r.status_code == 200, r.text
        return r.headers["x-flywheel-policy"].split("/")[0]

    sample = users[:300]
    for _ in range(2):  # sticky: the same policy every time
        assert await asyncio.gather(*(policy_for(u) for u in sample)) == decided[:300]
    assert {"stable", "candidate"} <= set(decided[:300])
    header = await client.post("/v1/chat/completions", headers={**tenant.headers, "X-Flywheel-User": users[0]},
                               json={"model": "chat", "messages": [{"role": "user", "content": "x"}]})
    assert header.headers["x-flywheel-policy"].split("/")[0] == decided[0]  # the header names the user too


async def test_canary_failure_falls_back_to_active(client, tenant, upstream):
    active = await make_policy(client, tenant, "chat", "stable", upstream.base_url)
    dead = "http://127.0.0.1:9/v1"  # discard port: nothing listens
    canary = await make_policy(client, tenant, "chat", "broken", dead, status="canary", share=0.99)
    # A user the router is certain to send to the canary (a fixed user would miss it 1 run in 100).
    user = next(u for u in (f"u{i}" for i in range(1000)) if in_canary(
        SimpleNamespace(id=uuid.UUID(canary["id"]), canary_share=0.99), user_hash(tenant.id, u)))
    r = await client.post("/v1/chat/completions", headers=tenant.headers,
                          json={"model": "chat", "messages": [{"role": "user", "content": "x"}], "user": user})
    assert r.status_code == 200 and r.headers["x-flywheel-policy"] == "stable/1"
    [item] = await recorded(client, tenant, 1)
    detail = (await client.get(f"/v1/rlaas/interactions/{item['interaction_id']}", headers=tenant.headers)).json()
    assert detail["interaction"]["policy_id"] == active["id"]
    assert detail["interaction"]["fallback_from_policy_id"] == canary["id"]


async def test_shadow_is_mirrored_without_delaying_the_answer(client, tenant, upstream, second_upstream):
    await make_policy(client, tenant, "chat", "stable", upstream.base_url)
    await make_policy(client, tenant, "chat", "challenger", second_upstream.base_url, status="shadow",
                      model="challenger-model")
    second_upstream.hold.clear()  # the shadow upstream does not answer until told
    r = await asyncio.wait_for(client.post("/v1/chat/completions", headers=tenant.headers, json={
        "model": "chat", "stream": True, "messages": [{"role": "user", "content": "mirror me"}]}), 15)
    assert r.status_code == 200 and "Hello" in r.text  # answered while the shadow is still waiting
    await eventually(lambda: len(second_upstream.requests) == 1 or None, timeout=10, what="the shadow call")
    mirrored = second_upstream.requests[0].body
    assert mirrored["model"] == "challenger-model" and mirrored["messages"][0]["content"] == "mirror me"
    assert "stream" not in mirrored  # shadows are read whole
    assert second_upstream.finished == 0
    second_upstream.hold.set()
    items = await recorded(client, tenant, 2)
    shadow = next(i for i in items if i["role"] == "shadow")
    primary = next(i for i in items if i["role"] == "primary")
    detail = (await client.get(f"/v1/rlaas/interactions/{shadow['interaction_id']}", headers=tenant.headers)).json()
    assert detail["interaction"]["primary_interaction_id"] == primary["interaction_id"]
    assert shadow["policy"] == "challenger"


async def test_saturated_shadow_pool_drops_and_counts(client, tenant, state, upstream, second_upstream):
    from flywheel.plugins.rlaas.shadow import SHADOWS, ShadowPool

    await make_policy(client, tenant, "chat", "stable", upstream.base_url)
    await make_policy(client, tenant, "chat", "slow-shadow", second_upstream.base_url, status="shadow")
    saved = state.extras[SHADOWS]
    pool = state.extras[SHADOWS] = ShadowPool(2)
    second_upstream.hold.clear()
    try:
        for _ in range(5):
            r = await client.post("/v1/chat/completions", headers=tenant.headers,
                                  json={"model": "chat", "messages": [{"role": "user", "content": "x"}]})
            assert r.status_code == 200
        assert (pool.started, pool.dropped) == (2, 3)
        metrics = (await client.get("/metrics")).text
        assert "flywheel_rlaas_shadow_dropped_total" in metrics
    finally:
        second_upstream.hold.set()
        await eventually(lambda: not pool.tasks or None, timeout=10, what="shadows done")
        state.extras[SHADOWS] = saved


async def test_feedback_links_to_a_gateway_interaction(client, tenant, live_server, upstream):
    await make_policy(client, tenant, "chat", "p", upstream.base_url)
    raw = await openai_client(live_server, tenant).chat.completions.with_raw_response.create(
        model="chat", messages=[{"role": "user", "content": "x"}])
    interaction_id = raw.headers["x-flywheel-interaction-id"]
    now = datetime.now(UTC).isoformat()
    events = [{"type": "rlaas.feedback", "event_id": str(uuid.uuid4()), "ts": now,
               "interaction_id": interaction_id, "signal": {"kind": "thumbs", "value": "down"}},
              {"type": "rlaas.task_result", "event_id": str(uuid.uuid4()), "ts": now,
               "interaction_id": interaction_id, "task": "ticket", "outcome": "success", "score": 1.0}]
    r = await client.post("/v1/events", json=events, headers=tenant.headers)
    assert r.json()["accepted"] == 2

    async def linked():
        r = await client.get(f"/v1/rlaas/interactions/{interaction_id}", headers=tenant.headers)
        body = r.json() if r.status_code == 200 else {}
        return body if body.get("feedback") and body.get("task_results") else None

    detail = await eventually(linked, timeout=15, what="feedback and task result linked")
    assert detail["feedback"][0]["signal"] == {"kind": "thumbs", "value": "down"}
    assert detail["task_results"][0]["outcome"] == "success"


async def test_upstream_credentials_never_leave(client, tenant, live_server, upstream, caplog, capsys):
    caplog.set_level("DEBUG")
    policy = await make_policy(client, tenant, "chat", "p", upstream.base_url, headers={"X-Org": "org-secret-42"})
    oai = openai_client(live_server, tenant)
    seen = [policy]
    seen.append((await oai.chat.completions.with_raw_response.create(
        model="chat", messages=[{"role": "user", "content": "x"}])).text)
    upstream.status = 500
    with pytest.raises(openai.InternalServerError) as failed:
        await oai.chat.completions.create(model="chat", messages=[{"role": "user", "content": "x"}])
    seen.append(failed.value.response.text)
    await recorded(client, tenant, 2)
    for path in ("/v1/rlaas/policies", f"/v1/rlaas/policies/{policy['id']}", f"/v1/rlaas/policies/{policy['id']}/audit",
                 "/v1/rlaas/interactions", "/v1/events?type=rlaas.interaction"):
        seen.append((await client.get(path, headers=tenant.headers)).text)
    async with httpx.AsyncClient(base_url=live_server.url) as http:
        seen.append((await http.get("/metrics")).text)
    seen += [caplog.text, *capsys.readouterr()]
    assert upstream.requests[0].headers["x-org"] == "org-secret-42"  # the upstream did get them
    for text in seen:
        assert UPSTREAM_KEY not in str(text) and "org-secret-42" not in str(text)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def litestar_only(flywheel_settings, tmp_path_factory):
    """The gateway with its fast path turned off: every call through the route handlers."""
    import msgspec

    from flywheel.server.app import create_app
    from flywheel.server.testing.client import app_client

    data_dir = tmp_path_factory.mktemp("gateway-litestar")
    shutil.copy(Path(flywheel_settings.data_dir) / "secret.key", data_dir)  # the key the policies are sealed with
    settings = msgspec.structs.replace(flywheel_settings, fast_routes=False, data_dir=str(data_dir))
    async with app_client(create_app(settings, load_entrypoints=True)) as c:
        yield c


async def test_the_gateway_routes_are_served_in_front_of_litestar(app):
    from flywheel.server.fast_routes import FastRoutes

    handler = app.asgi_handler
    while not isinstance(handler, FastRoutes):
        handler = handler.app
    assert {("POST", "/v1/chat/completions"), ("POST", "/v1/embeddings")} <= set(handler.routes)


async def test_the_fast_path_and_the_handlers_answer_alike(client, litestar_only, tenant, upstream):
    """The same calls through both paths: the same statuses, bodies, headers and recorded interactions."""
    await make_policy(client, tenant, "chat", "p", upstream.base_url)
    await make_policy(client, tenant, "embed", "e", upstream.base_url)
    chat = {"model": "chat", "messages": [{"role": "user", "content": "same"}], "user": "u1", "seed": 3}
    calls = [("/v1/chat/completions", chat), ("/v1/chat/completions", {**chat, "stream": True}),
             ("/v1/embeddings", {"model": "embed", "input": "a"}),
             ("/v1/chat/completions", {**chat, "model": "missing"}),
             ("/v1/chat/completions", {"model": "chat", "messages": []})]
    answers = {}
    for name, c in (("fast", client), ("litestar", litestar_only)):
        answers[name] = []
        for path, body in calls:
            r = await c.post(path, json=body, headers={**tenant.headers, "X-Flywheel-Session": "s1"})
            answers[name].append((r.status_code, r.headers.get("content-type"), r.headers.get("x-request-id"),
                                  r.headers.get("x-flywheel-policy"), "x-flywheel-interaction-id" in r.headers,
                                  r.text if path.endswith("embeddings") or r.status_code != 200 else
                                  r.text.replace(r.headers.get("x-flywheel-interaction-id", ""), "")))
    assert answers["fast"] == answers["litestar"]
    assert [a[0] for a in answers["fast"]] == [200, 200, 200, 404, 422]
    items = await recorded(client, tenant, 6)  # three calls answered, twice each
    assert sorted((i["endpoint"], i["stream"], i["session_id"]) for i in items) == sorted(
        [("chat.completions", False, "s1"), ("chat.completions", True, "s1"), ("embeddings", False, "s1")] * 2)


async def test_a_name_that_resolves_inside_is_refused_at_connect_time(client, tenant, upstream):
    """The policy names the machine's host name, which passes the write-time check (a name, and
    `*` allows any public one) but resolves to loopback: the gateway must not call it."""
    import socket

    from flywheel.plugins.rlaas.upstream import GuardedResolver, PrivateAddress

    name = socket.gethostname()
    resolved = {a[4][0] for a in socket.getaddrinfo(name, 80, proto=socket.IPPROTO_TCP)}
    assert "127.0.0.1" in resolved, f"this test needs the host name {name!r} to resolve to 127.0.0.1 (/etc/hosts)"
    inside = upstream.base_url.replace("127.0.0.1", name)
    await make_policy(client, tenant, "chat", "inside", inside)
    before = len(upstream.requests)
    r = await client.post("/v1/chat/completions", headers=tenant.headers,
                          json={"model": "chat", "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 503, r.text
    assert r.json()["code"] == "upstream_unreachable" and "resolves to a private" in r.json()["message"]
    assert len(upstream.requests) == before  # nothing reached the upstream

    assert await GuardedResolver([name]).resolve(name, 80)  # named exactly: allowed
    with pytest.raises(PrivateAddress):
        await GuardedResolver(["*"]).resolve(name, 80)

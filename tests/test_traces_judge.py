"""The LLM judge against a real HTTP server speaking OpenAI's chat API: valid answers stored with the
judge's identity, invalid ones refused and recorded, retried, and the deterministic judge as the fallback."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field

import pytest
from traces_helpers import new_trace, send, story_json

from flywheel.plugins.traces.judge.rubric import WEIGHTS
from flywheel.server.testing.live import serving


def rubric(score: int = 4) -> str:
    return json.dumps({name: {"score": score, "justification": f"{name} looks fine"} for name in WEIGHTS})


@dataclass
class Judge:
    """Answers chat completions; a request whose text holds a key of `script` gets its answers in turn."""

    script: dict[str, list[str]] = field(default_factory=dict)
    seen: list[dict] = field(default_factory=list)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        request = json.loads(body)
        self.seen.append(request)
        text = json.dumps(request["messages"])
        content = rubric(3)
        for marker, answers in self.script.items():
            if marker in text and answers:
                content = answers.pop(0)
        payload = {"id": "chatcmpl-1", "object": "chat.completion", "model": request["model"],
                   "choices": [{"index": 0, "finish_reason": "stop",
                                "message": {"role": "assistant", "content": content}}]}
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": json.dumps(payload).encode()})


@pytest.fixture
async def judge_server(monkeypatch):
    judge = Judge()
    async with serving(judge) as port:
        monkeypatch.setenv("FLYWHEEL_TRACES_JUDGE_URL", f"http://127.0.0.1:{port}/v1")
        monkeypatch.setenv("FLYWHEEL_TRACES_JUDGE_MODEL", "judge-model")
        monkeypatch.setenv("FLYWHEEL_TRACES_JUDGE_RETRIES", "2")
        judge.port = port
        yield judge


async def judged(client, tenant, worker, judge, answers: list[str]) -> tuple[str, dict]:
    marker = f"judge-case-{uuid.uuid4().hex[:8]}"
    judge.script[marker] = answers
    tid = await new_trace(client, tenant, task=f"fix mean() {marker}")
    await send(client, tenant, tid, 1, story_json())
    assert (await client.post(f"/v1/traces/{tid}/finalize", json={}, headers=tenant.headers)).status_code == 200
    await worker()
    return tid, (await client.get(f"/v1/traces/{tid}", headers=tenant.headers)).json()


async def test_a_valid_answer_is_stored_with_the_judges_identity(client, tenant, worker, judge_server):
    tid, trace = await judged(client, tenant, worker, judge_server, [rubric(4)])
    [score] = trace["scores"]
    assert score["judge"] == f"openai:judge-model@127.0.0.1:{judge_server.port}"
    assert score["rubric_version"] == "traces-rubric-1" and score["overall"] == 4.0
    asked = [r for r in judge_server.seen if tid in json.dumps(r) or "judge-case" in json.dumps(r)][-1]
    assert asked["model"] == "judge-model" and asked["response_format"]["type"] == "json_schema"
    assert asked["response_format"]["json_schema"]["strict"] is True


async def test_invalid_answers_are_refused_recorded_and_retried(client, tenant, worker, judge_server, database):
    bad_score = json.loads(rubric(4))
    bad_score["minimality"]["score"] = 7
    tid, trace = await judged(client, tenant, worker, judge_server,
                              ["I think it is good.", json.dumps(bad_score), rubric(2)])
    assert trace["scores"][0]["overall"] == 2.0 and trace["scores"][0]["judge"].startswith("openai:")
    rejected = await database.fetch("SELECT attempt, problem, answer FROM traces_judge_rejections "
                                    "WHERE trace_id = $1 ORDER BY attempt", uuid.UUID(tid))
    assert [r["attempt"] for r in rejected] == [1, 2]
    assert rejected[0]["answer"] == "I think it is good." and "not the rubric's shape" in rejected[0]["problem"]
    assert "<= 5" in rejected[1]["problem"], rejected[1]["problem"]


async def test_no_valid_answer_falls_back_to_the_deterministic_judge(client, tenant, worker, judge_server, database):
    missing = json.loads(rubric(4))
    del missing["rationale_quality"]
    extra = {**json.loads(rubric(4)), "bonus": {"score": 5, "justification": "x"}}
    tid, trace = await judged(client, tenant, worker, judge_server,
                              [json.dumps(missing), json.dumps(extra), "[]"])
    [score] = trace["scores"]
    assert score["judge"] == "deterministic-1"
    count = await database.fetchval("SELECT count(*) FROM traces_judge_rejections WHERE trace_id = $1",
                                    uuid.UUID(tid))
    assert count == 3

"""The LLM judge: any OpenAI-compatible chat endpoint (Flywheel's rlaas gateway included).

It is asked for JSON in the rubric's shape (`response_format` json_schema,
strict); the answer is validated against `RubricAnswer` and anything else
(not JSON, a missing dimension, a score of 7) is refused, recorded in
`traces_judge_rejections`, and asked again, up to the retries configured.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
import msgspec

from flywheel.plugins.traces.judge.rubric import QUESTIONS, RubricAnswer
from flywheel.plugins.traces.settings import TracesSettings

_SCHEMA = msgspec.json.schema(RubricAnswer)
_SYSTEM = ("You review a developer's bug-fixing session. Score each dimension from 0 (absent) to 5 "
           "(exemplary) with a one- or two-sentence justification. Answer with JSON only, in the schema given.\n"
           + "\n".join(f"- {name}: {q}" for name, q in QUESTIONS.items()))


class JudgeFailed(Exception):
    pass


def identity(settings: TracesSettings) -> str:
    return f"openai:{settings.judge_model}@{urlsplit(settings.judge_url or '').netloc}"


def request_body(settings: TracesSettings, summary: str) -> dict:
    return {"model": settings.judge_model, "temperature": 0,
            "messages": [{"role": "system", "content": _SYSTEM}, {"role": "user", "content": summary}],
            "response_format": {"type": "json_schema",
                                "json_schema": {"name": "rubric", "strict": True, "schema": _SCHEMA}}}


async def ask(settings: TracesSettings, summary: str, reject) -> RubricAnswer:
    """The validated answer; `await reject(attempt, problem, answer)` for each refused one."""
    headers = {"Authorization": f"Bearer {settings.judge_api_key}"} if settings.judge_api_key else {}
    url = settings.judge_url.rstrip("/") + "/chat/completions"
    async with httpx.AsyncClient(timeout=settings.judge_timeout_s) as http:
        for attempt in range(1, settings.judge_retries + 2):
            problem, answer = await _attempt(http, url, headers, request_body(settings, summary))
            if isinstance(answer, RubricAnswer):
                return answer
            await reject(attempt, problem, answer)
    raise JudgeFailed(f"no valid answer in {settings.judge_retries + 1} attempts")


async def _attempt(http: httpx.AsyncClient, url: str, headers: dict, body: dict) -> tuple[str, RubricAnswer | str]:
    try:
        response = await http.post(url, json=body, headers=headers)
    except httpx.HTTPError as exc:
        return f"request failed: {type(exc).__name__}", ""
    if response.status_code != 200:
        return f"HTTP {response.status_code}", response.text[:4000]
    try:
        content = response.json()["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        return "not a chat completion", response.text[:4000]
    if not isinstance(content, str):
        return "the message has no text content", response.text[:4000]
    try:
        return "", msgspec.json.decode(content, type=RubricAnswer)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        return f"not the rubric's shape: {exc}", content[:20000]


def summary_text(trace, events: list, qa, metrics, *, limit: int = 24_000) -> str:
    """What the judge reads: the task, the metrics, QA, and the events (diffs and notes first to go long)."""
    head = msgspec.json.encode({"task": trace.task, "repository": trace.repository, "metrics": metrics,
                                "qa": qa}).decode()
    lines = [head]
    for e in events:
        lines.append(msgspec.json.encode(e).decode()[:4000])
    text = "\n".join(lines)
    return text if len(text) <= limit else text[:limit] + "\n[... truncated ...]"

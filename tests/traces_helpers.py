"""Building traces through the API in tests: events as JSON, chunks, workspace tarballs."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, time, timedelta

import msgspec

from flywheel.plugins.traces.example import BUGGY, FIXED, story, workspace_tarball

T0 = datetime.combine(datetime.now(UTC).date() - timedelta(days=1), time(9), tzinfo=UTC)  # recent: see story()


def story_json() -> list[dict]:
    """The example's nine events as a client sends them."""
    return [msgspec.to_builtins(e) for e in story()]


def event(seq: int, type_name: str = "rationale_note", minutes: float | None = None, **fields) -> dict:
    base = {"type": f"traces.{type_name}", "event_id": str(uuid.uuid4()), "seq": seq,
            "ts": (T0 + timedelta(minutes=seq if minutes is None else minutes)).isoformat()}
    defaults = {"rationale_note": {"text": f"note {seq}"},
                "cmd_run": {"command": "make", "exit_code": 0},
                "test_run": {"command": "pytest", "passed": 1},
                "file_edit": {"path": "a.py", "lines_added": 1},
                "commit": {"sha": "abcdef1", "message": "fix"}}[type_name]
    return {**base, **defaults, **fields}


async def new_trace(client, tenant, **overrides) -> str:
    body = {"repository": "example/stats", "base_commit": "a1b2c3d", "task": "fix mean()", **overrides}
    r = await client.post("/v1/traces", json=body, headers=tenant.headers)
    assert r.status_code == 201, r.text
    return r.json()["id"]


async def send(client, tenant, trace_id: str, n: int, events: list[dict]):
    return await client.post(f"/v1/traces/{trace_id}/chunks/{n}", json={"events": events}, headers=tenant.headers)


async def upload(client, tenant, trace_id: str, data: bytes, kind: str = "workspace", sha: str | None = None):
    sha = sha or hashlib.sha256(data).hexdigest()
    return await client.put(f"/v1/traces/{trace_id}/artifacts/{sha}", params={"kind": kind}, content=data,
                            headers={**tenant.headers, "Content-Type": "application/octet-stream"})


__all__ = ["BUGGY", "FIXED", "event", "new_trace", "send", "story_json", "upload", "workspace_tarball"]

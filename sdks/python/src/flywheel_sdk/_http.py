"""One batch, one `POST /v1/events`: what an answer means and how long to wait before the next try.

Every try of a batch carries the batch's `Idempotency-Key`. The server keeps
the first answer for an (API key, Idempotency-Key) pair for 24 hours and
replays it, so a batch it stored but whose answer was lost (a timeout, a
dropped connection) is not stored twice; events are also deduplicated by
`event_id`, which covers a batch older than that.

What an answer means:
- 2xx: acknowledged; its IngestResult lists the events rejected one by one.
- connection errors and timeouts, 408, 409 (the same key still running),
  425, 429, 502, 503, 504: retried; after the last retry the server counts
  as unavailable and the batch waits (in the offline buffer if there is one).
- 500: retried, but after the last retry the batch is rejected: a server
  that answers yet fails on this batch every time would otherwise hold up
  every batch behind it, for ever.
- 413: the batch is too large for the server; the client splits it.
- any other 4xx (400, 401, 403, 422, ...): rejected at once, never retried.
"""

from __future__ import annotations

import asyncio
import random
import threading
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

import httpx
import msgspec

PATH = "/v1/events"
RETRIED = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
# A Retry-After longer than this is not slept through inside one delivery:
# the client goes offline until then (buffering what comes meanwhile).
MAX_INLINE_WAIT_S = 60.0


class RejectedEvent(msgspec.Struct):
    """One entry of IngestResult.errors (flywheel.contracts.events.RejectedEvent)."""

    index: int
    code: str
    message: str
    field: str | None = None


class IngestResult(msgspec.Struct):
    """The answer to `POST /v1/events` (flywheel.contracts.events.IngestResult)."""

    accepted: int
    duplicate: int
    rejected: int
    errors: list[RejectedEvent] = []
    spooled: bool = False


_decode_result = msgspec.json.Decoder(IngestResult).decode


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter; a Retry-After answer is the least wait."""

    max_retries: int = 5
    backoff: float = 0.5
    max_backoff: float = 30.0

    def delay(self, retry: int, retry_after: float | None = None) -> float:
        """Seconds before retry number `retry` (0 is the first retry)."""
        ceiling = min(self.max_backoff, self.backoff * 2 ** min(retry, 60))
        return max(random.uniform(0, ceiling), retry_after or 0.0)

    def probe_delay(self, failures: int, retry_after: float | None = None) -> float:
        """Seconds offline before trying the server again, after `failures` deliveries in a row gave up.

        Half fixed, half jitter ("equal jitter"): a probe never comes right
        after the last one, and many clients that lost the same server do not
        come back in step.
        """
        ceiling = min(self.max_backoff, self.backoff * 2 ** min(failures, 60))
        return max(ceiling / 2 + random.uniform(0, ceiling / 2), retry_after or 0.0)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After in seconds: delta-seconds ("5") or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # RFC 9110 dates are GMT
            when = when.replace(tzinfo=timezone.utc)  # not datetime.UTC: Python 3.11+
        seconds = (when - (now or datetime.now(timezone.utc))).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), 86_400.0)


@dataclass(frozen=True)
class Delivery:
    """How one batch's delivery ended.

    kind: "ok" (acknowledged), "rejected" (never to be sent again),
    "too_large" (413: split it) or "unavailable" (keep it, try later).
    """

    kind: str
    status: int | None = None
    result: IngestResult | None = None
    message: str = ""
    retry_after: float | None = None
    retries: int = 0
    code: str = ""  # the server's error code ("unauthorized", "invalid_json", ...)


def classify(status: int, retry_after: str | None, content: bytes) -> Delivery:
    """What one HTTP answer means for the batch; kind "retry" means try again."""
    if 200 <= status < 300:
        try:
            result = _decode_result(content)
        except msgspec.DecodeError:  # acknowledged all the same (a proxy's empty 2xx, say)
            result = None
        return Delivery("ok", status, result)
    code, message = _error_of(content)
    message = message or f"HTTP {status}"
    if status in RETRIED:
        return Delivery("retry", status, message=message, code=code, retry_after=parse_retry_after(retry_after))
    return Delivery("too_large" if status == 413 else "rejected", status, message=message, code=code)


def _error_of(content: bytes) -> tuple[str, str]:
    """The code and message of an error body ({"status","code","message","field","details"})."""
    try:
        body = msgspec.json.decode(content)
    except msgspec.DecodeError:
        return "", content[:200].decode("utf-8", "replace").strip()
    if isinstance(body, dict):
        return str(body.get("code") or "")[:100], str(body.get("message") or "")[:500]
    return "", ""


def _given_up(last: Delivery, retries: int) -> Delivery:
    kind = "rejected" if last.status == 500 else "unavailable"
    return replace(last, kind=kind, retries=retries)


def _request_headers(key: str) -> dict[str, str]:
    return {"Idempotency-Key": key, "Content-Type": "application/json"}


def _unreachable(exc: Exception) -> Delivery:
    # The batch may have reached the server (a timeout after the body was sent):
    # the retry carries the same Idempotency-Key.
    return Delivery("retry", None, message=f"{type(exc).__name__}: {exc}"[:500])


def deliver_sync(http: httpx.Client, body: bytes, key: str, policy: RetryPolicy, retries: int,
                 aborted: threading.Event) -> Delivery:
    """Send one batch, retrying up to `retries` times; `aborted` cuts the waits short."""
    done = 0
    while True:
        try:
            response = http.post(PATH, content=body, headers=_request_headers(key))
        except httpx.RequestError as exc:
            answer = _unreachable(exc)
        else:
            answer = classify(response.status_code, response.headers.get("retry-after"), response.content)
        if answer.kind != "retry":
            return replace(answer, retries=done)
        wait = policy.delay(done, answer.retry_after)
        if done >= retries or wait > MAX_INLINE_WAIT_S or aborted.wait(wait):
            return _given_up(answer, done)
        done += 1


async def deliver_async(http: httpx.AsyncClient, body: bytes, key: str, policy: RetryPolicy, retries: int,
                        aborted: asyncio.Event) -> Delivery:
    """`deliver_sync` for asyncio."""
    done = 0
    while True:
        try:
            response = await http.post(PATH, content=body, headers=_request_headers(key))
        except httpx.RequestError as exc:
            answer = _unreachable(exc)
        else:
            answer = classify(response.status_code, response.headers.get("retry-after"), response.content)
        if answer.kind != "retry":
            return replace(answer, retries=done)
        wait = policy.delay(done, answer.retry_after)
        if done >= retries or wait > MAX_INLINE_WAIT_S or await _aborted_within(aborted, wait):
            return _given_up(answer, done)
        done += 1


async def _aborted_within(aborted: asyncio.Event, seconds: float) -> bool:
    try:
        await asyncio.wait_for(aborted.wait(), seconds)
    except asyncio.TimeoutError:  # not the builtin: on Python 3.10 they differ
        return False
    return True

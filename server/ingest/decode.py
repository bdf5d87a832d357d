"""Turning a request body into events, one outcome per event.

The body is first split into raw items without decoding them (a JSON or
msgpack array of `msgspec.Raw`, or NDJSON lines), then each item is decoded
straight into the tagged union of every registered event type. One bad
event therefore rejects only itself, with its index and the field at fault.
"""

from __future__ import annotations

import functools
import operator
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from flywheel.contracts.events import Event, RejectedEvent
from flywheel.server.errors import MSGSPEC_AT, ApiError

JSON = "application/json"
NDJSON = "application/x-ndjson"
MSGPACK = "application/msgpack"
CONTENT_TYPES = {JSON: JSON, NDJSON: NDJSON, "application/jsonl": NDJSON, MSGPACK: MSGPACK,
                 "application/x-msgpack": MSGPACK, "application/vnd.msgpack": MSGPACK}

# Events must fall inside the partitions we keep: not too old, not in the future.
MAX_FUTURE = timedelta(days=1)


class BodyTooLarge(ApiError):
    status, code = 413, "body_too_large"


@dataclass
class DecodedBatch:
    events: list[tuple[int, Event]] = field(default_factory=list)
    errors: list[RejectedEvent] = field(default_factory=list)


def gunzip(body: bytes, limit: int) -> bytes:
    """Decompress a gzip body, refusing to inflate past `limit` bytes (zip bombs)."""
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise ApiError(f"body is not valid gzip: {exc}", code="malformed_body") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise BodyTooLarge(f"decompressed body exceeds {limit} bytes")
    if not inflater.eof:
        raise ApiError("gzip body is truncated", code="malformed_body")
    return out


class BatchDecoder:
    """Decodes batches into the union of `event_types`; built once per app."""

    def __init__(self, event_types: list[type[Event]], *, max_events: int = 10_000, max_age_days: int = 365) -> None:
        union: Any = functools.reduce(operator.or_, event_types)  # the tagged union of every type
        self.json_event = msgspec.json.Decoder(union)
        self.msgpack_event = msgspec.msgpack.Decoder(union)
        self.json_items = msgspec.json.Decoder(list[msgspec.Raw])
        self.msgpack_items = msgspec.msgpack.Decoder(list[msgspec.Raw])
        self.json_batch = msgspec.json.Decoder(list[union])
        self.msgpack_batch = msgspec.msgpack.Decoder(list[union])
        self.max_events = max_events
        self.max_age = timedelta(days=max_age_days)

    def media_type(self, content_type: str | None) -> str:
        base = (content_type or JSON).split(";")[0].strip().lower()
        kind = CONTENT_TYPES.get(base)
        if kind is None:
            raise ApiError(f"unsupported content type {base!r}; send {JSON}, {NDJSON} or {MSGPACK}",
                           status=415, code="unsupported_media_type", field="header.Content-Type")
        return kind

    def split(self, body: bytes, kind: str) -> list[tuple[int, Any]]:
        """(index, raw item) pairs; raises 400 when the body is not a batch at all."""
        if kind == NDJSON:
            items = [(i, line) for i, line in enumerate(body.split(b"\n")) if line.strip()]
        else:
            decoder = self.json_items if kind == JSON else self.msgpack_items
            what = "a JSON array of events" if kind == JSON else "a msgpack array of events"
            try:
                items = list(enumerate(decoder.decode(body)))
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                raise ApiError(f"body is not {what}: {_strip_at(str(exc))}", code="malformed_body") from None
            except RecursionError:
                raise ApiError(f"body is not {what}: nested too deeply", code="too_deep") from None
        if len(items) > self.max_events:
            raise BodyTooLarge(f"a batch holds at most {self.max_events} events, got {len(items)}")
        return items

    def decode(self, body: bytes, kind: str, *, now: datetime | None = None) -> DecodedBatch:
        out = DecodedBatch()
        now = now or datetime.now(UTC)
        oldest, newest = now - self.max_age, now + MAX_FUTURE
        if kind != NDJSON:
            # Most batches are valid as a whole: one decode call for all of
            # them is a third cheaper than one per event. Any error, and the
            # batch is decoded again event by event to say which and why.
            try:
                events = (self.msgpack_batch if kind == MSGPACK else self.json_batch).decode(body)
            except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError, RecursionError):
                pass
            else:
                if len(events) > self.max_events:
                    raise BodyTooLarge(f"a batch holds at most {self.max_events} events, got {len(events)}")
                for index, event in enumerate(events):
                    if oldest <= event.ts <= newest:
                        out.events.append((index, event))
                    else:
                        out.errors.append(_out_of_range(index, oldest, newest))
                return out
        decoder = self.msgpack_event if kind == MSGPACK else self.json_event
        for index, raw in self.split(body, kind):
            try:
                event = decoder.decode(raw)
            except msgspec.ValidationError as exc:
                out.errors.append(_rejection(index, str(exc)))
                continue
            except msgspec.DecodeError as exc:
                out.errors.append(RejectedEvent(index=index, code="malformed_event",
                                                message=f"not valid {'msgpack' if kind == MSGPACK else 'JSON'}: "
                                                        f"{_strip_at(str(exc))}"))
                continue
            except UnicodeDecodeError as exc:  # msgspec lets invalid UTF-8 in strings through as this
                out.errors.append(RejectedEvent(index=index, code="malformed_event", field=f"$[{index}]",
                                                message=f"text is not valid UTF-8 (byte {exc.start})"))
                continue
            except RecursionError:
                out.errors.append(RejectedEvent(index=index, code="too_deep", field=f"$[{index}]",
                                                message="the event nests too deeply"))
                continue
            if not oldest <= event.ts <= newest:
                out.errors.append(_out_of_range(index, oldest, newest))
                continue
            out.events.append((index, event))
        return out


def _out_of_range(index: int, oldest: datetime, newest: datetime) -> RejectedEvent:
    return RejectedEvent(index=index, code="out_of_range", field=f"$[{index}].ts",
                         message=f"ts must be between {oldest:%Y-%m-%d} and {newest:%Y-%m-%d} (UTC)")


def _strip_at(message: str) -> str:
    match = MSGSPEC_AT.search(message)
    return message[: match.start()] if match else message


def _rejection(index: int, message: str) -> RejectedEvent:
    match = MSGSPEC_AT.search(message)
    path = match.group(1) if match else ""
    text = message[: match.start()] if match else message
    code = "validation_error"
    if path == ".type" and text.startswith("Invalid value"):
        code, text = "unknown_type", f"unknown event type: {text.removeprefix('Invalid value ').strip()}"
    elif text.startswith(("Object missing required field", "Object contains unknown field")):
        missing = text.split("`")[1] if "`" in text else ""
        path = f"{path}.{missing}" if missing else path
    return RejectedEvent(index=index, code=code, message=text, field=f"$[{index}]{path}")

"""Events as `POST /v1/events` takes them, and the rlaas helpers that build them.

An event is a JSON object with a `type` (any registered event type, for
example `rlaas.feedback` or a plugin's own), a client-made `event_id` and a
timezone-aware `ts`. The SDK fills in the last two when they are missing and
encodes the event once, when it is sent: later changes to the caller's dict
do not reach the batch, and the size is known for batching by bytes.

The rlaas helpers mirror `flywheel.plugins.rlaas.contracts` without
importing it (the SDK does not depend on the server); the server validates
every field again, and tests/test_sdk_python.py decodes what the helpers make
with the server's own Structs.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any
from uuid import UUID, uuid4

import msgspec

_encode = msgspec.json.Encoder().encode
ENVELOPE = frozenset({"event_id", "ts", "subject_id", "session_id", "attributes"})
THUMBS = ("up", "down")
PREFERRED = ("this", "other", "tie")
OUTCOMES = ("success", "failure", "partial", "abandoned")


def encode_event(event: Mapping[str, Any] | msgspec.Struct) -> tuple[bytes, str]:
    """The event's JSON and its event_id, with `event_id` (a uuid4) and `ts` (now) filled in if missing."""
    if isinstance(event, msgspec.Struct):
        config = event.__struct_config__
        if config.tag_field != "type" or not isinstance(config.tag, str):
            raise TypeError(f"{type(event).__name__} is not an event type: subclass flywheel.contracts.events.Event "
                            "with a tag (class MyEvent(Event, tag='myplugin.my_event'))")
        event_id = getattr(event, "event_id", None)
        if event_id is None:
            raise TypeError(f"{type(event).__name__} has no event_id")
        return _encode(event), str(event_id)
    if not isinstance(event, Mapping):
        raise TypeError(f"an event is a dict or a msgspec Struct, not {type(event).__name__}")
    body = dict(event)
    kind = body.get("type")
    if not isinstance(kind, str) or not kind:
        raise ValueError("an event needs a 'type', the name of a registered event type (e.g. 'rlaas.feedback')")
    if body.get("event_id") is None:
        body["event_id"] = str(uuid4())
    if body.get("ts") is None:
        body["ts"] = datetime.now(timezone.utc)  # not datetime.UTC: that is Python 3.11+
    return _encode(body), str(body["event_id"])


def feedback_event(interaction_id: UUID | str, *, thumbs: str | None = None, rating: int | None = None,
                   corrected_text: str | None = None, compare_with: UUID | str | None = None,
                   preferred: str | None = None, comment: str | None = None, **envelope: Any) -> dict[str, Any]:
    """An `rlaas.feedback` event: exactly one of thumbs, rating, corrected_text or compare_with (+ preferred)."""
    given = [name for name, value in (("thumbs", thumbs), ("rating", rating), ("corrected_text", corrected_text),
                                      ("compare_with", compare_with)) if value is not None]
    if len(given) != 1:
        raise ValueError("feedback takes exactly one of thumbs=, rating=, corrected_text= or compare_with=, "
                         f"got {', '.join(given) or 'none'}")
    if preferred is not None and compare_with is None:
        raise ValueError("preferred= goes with compare_with=")
    event: dict[str, Any] = {"type": "rlaas.feedback", "interaction_id": _uuid(interaction_id, "interaction_id"),
                             "signal": _signal(thumbs, rating, corrected_text, compare_with, preferred)}
    if comment is not None:
        event["comment"] = comment
    return _with_envelope(event, envelope)


def _signal(thumbs: str | None, rating: int | None, corrected_text: str | None, compare_with: UUID | str | None,
            preferred: str | None) -> dict[str, Any]:
    if thumbs is not None:
        if thumbs not in THUMBS:
            raise ValueError(f"thumbs is 'up' or 'down', not {thumbs!r}")
        return {"kind": "thumbs", "value": thumbs}
    if rating is not None:
        if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5:
            raise ValueError(f"rating is an integer from 1 to 5, not {rating!r}")
        return {"kind": "rating", "value": rating}
    if corrected_text is not None:
        if not isinstance(corrected_text, str):
            raise ValueError("corrected_text is the answer as the user corrected it (a string)")
        return {"kind": "edit", "corrected_text": corrected_text}
    if preferred not in PREFERRED:
        raise ValueError(f"compare_with= needs preferred='this', 'other' or 'tie', not {preferred!r}")
    return {"kind": "comparison", "other_interaction_id": _uuid(compare_with, "compare_with"), "preferred": preferred}


def task_result_event(interaction_id: UUID | str, task: str, outcome: str, *, score: float | None = None,
                      details: Mapping[str, Any] | None = None, **envelope: Any) -> dict[str, Any]:
    """An `rlaas.task_result` event: how the task an interaction served ended."""
    if not isinstance(task, str) or not task:
        raise ValueError("task names the task (e.g. 'ticket.resolve')")
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome is one of {', '.join(OUTCOMES)}, not {outcome!r}")
    if score is not None and (isinstance(score, bool) or not isinstance(score, (int, float))):
        raise ValueError(f"score is a number, not {score!r}")
    event: dict[str, Any] = {"type": "rlaas.task_result", "interaction_id": _uuid(interaction_id, "interaction_id"),
                             "task": task, "outcome": outcome}
    if score is not None:
        event["score"] = score
    if details is not None:
        event["details"] = dict(details)
    return _with_envelope(event, envelope)


def _with_envelope(event: dict[str, Any], envelope: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(envelope) - ENVELOPE)
    if unknown:
        raise TypeError(f"unexpected keyword argument(s) {', '.join(unknown)}; the envelope has "
                        f"{', '.join(sorted(ENVELOPE))}")
    event.update((name, value) for name, value in envelope.items() if value is not None)
    return event


def _uuid(value: UUID | str | None, name: str) -> str:
    try:
        return str(value if isinstance(value, UUID) else UUID(str(value)))
    except ValueError:
        raise ValueError(f"{name} is a UUID (the X-Flywheel-Interaction-Id header), not {value!r}") from None

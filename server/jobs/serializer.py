"""Job payloads travel through Redis as msgpack, not pickle: whoever can write
to Redis must not be able to run code in a worker."""

from __future__ import annotations

from typing import Any

import msgspec

_encoder = msgspec.msgpack.Encoder()


def job_serializer(obj: Any) -> bytes:
    # ARQ stores exceptions as results; those are not ours to ship, keep their text.
    return _encoder.encode(obj) if not isinstance(obj, dict) else _encoder.encode(_plain(obj))


def _plain(obj: dict) -> dict:
    return {k: (repr(v) if isinstance(v, BaseException) else v) for k, v in obj.items()}


def job_deserializer(data: bytes) -> Any:
    return msgspec.msgpack.decode(data)

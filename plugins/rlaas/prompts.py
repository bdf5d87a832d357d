"""A prompt's normalized hash: how rewards and preference pairs tell that two
interactions answered the same prompt.

The prompt is the request's `messages` (for a request without them, such as
an embedding, its `input`, else its `prompt`). Each message becomes
`[role, content, rest]`: text (a string content, or the `text` of a
`{"type": "text"}` part) is Unicode-NFC normalized, case-folded and its
whitespace runs collapsed to one space, trimmed at both ends; a content made
only of text parts is their texts joined by a space, as one string; other
parts (images, audio) and the message's other fields (`name`, `tool_calls`,
`tool_call_id`, ...) are kept as sent. So "Where is  my order?\n" and
"where is my order?" are one prompt, while another system prompt or another
tool call is another prompt. Request fields that are not the prompt
(`model`, `temperature`, `user`, ...) are left out: two policies answering
the same conversation share its hash.

The hash is the first 32 hex digits of SHA-256 over the tenant id's 16 bytes
followed by the canonical JSON of the normalized prompt (keys sorted, no
spaces, UTF-8), as `users.user_hash` does for users: the same prompt in two
tenants has two hashes, so rows cannot be matched across tenants.
"""

from __future__ import annotations

import hashlib
import unicodedata
from typing import Any
from uuid import UUID

import msgspec

HASH_CHARS = 32  # 128 bits, as for user hashes

_encode = msgspec.json.Encoder(order="sorted").encode


def normalize_text(text: str) -> str:
    """NFC, case-folded, whitespace runs collapsed to one space, trimmed."""
    return " ".join(unicodedata.normalize("NFC", text).casefold().split())


def _is_text(part: Any) -> bool:
    return isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str)


def _content(content: Any) -> Any:
    if isinstance(content, str):
        return normalize_text(content)
    if isinstance(content, list):
        if all(_is_text(part) for part in content):  # the same words as one string or in text parts
            return normalize_text(" ".join(part["text"] for part in content))
        return [normalize_text(part["text"]) if _is_text(part) else part for part in content]
    return content


def _message(message: Any) -> list:
    if not isinstance(message, dict):
        return ["", _content(message), {}]
    role = message.get("role")
    rest = {k: v for k, v in message.items() if k not in ("role", "content")}
    return [normalize_text(role) if isinstance(role, str) else role, _content(message.get("content")), rest]


def normalized_prompt(request: dict[str, Any]) -> dict[str, Any]:
    """The part of a request that is its prompt, normalized (see the module docstring)."""
    messages = request.get("messages")
    if isinstance(messages, list):
        return {"messages": [_message(m) for m in messages]}
    for key in ("input", "prompt"):
        if key in request:
            value = request[key]
            if isinstance(value, list):
                return {key: [normalize_text(v) if isinstance(v, str) else v for v in value]}
            return {key: normalize_text(value) if isinstance(value, str) else value}
    return {"messages": []}


def prompt_hash(tenant_id: UUID | str, request: dict[str, Any]) -> str:
    """The tenant-scoped hash of a request's normalized prompt: 32 hex digits."""
    tenant = tenant_id if isinstance(tenant_id, UUID) else UUID(str(tenant_id))
    return hashlib.sha256(tenant.bytes + _encode(normalized_prompt(request))).hexdigest()[:HASH_CHARS]

"""Reading an OpenAI server-sent-event stream while it is forwarded, for the record.

The gateway forwards the upstream's bytes as they arrive; this only watches
them. It joins the content deltas into one message (what the user saw),
keeps the tool-call deltas merged by index, and takes `usage` from the last
chunk when the upstream sends it (`stream_options.include_usage`); otherwise
completion tokens are counted as the chunks that carried content, which for
OpenAI-compatible servers is one token a chunk.
"""

from __future__ import annotations

from typing import Any

import msgspec

_decode = msgspec.json.decode
MAX_LINE = 1 << 20  # a line longer than this is not an SSE event we can read


class StreamRecord:
    def __init__(self) -> None:
        self._buffer = b""
        self.content: dict[int, list[str]] = {}
        self.tool_calls: dict[int, dict[int, dict[str, Any]]] = {}
        self.finish: dict[int, str | None] = {}
        self.usage: dict[str, Any] | None = None
        self.content_chunks = 0
        self.meta: dict[str, Any] = {}

    def feed(self, chunk: bytes) -> None:
        self._buffer += chunk
        if b"\n" not in chunk:
            if len(self._buffer) > MAX_LINE:
                self._buffer = b""
            return
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            if line.startswith(b"data:"):
                self._event(line[5:].strip())

    def _event(self, data: bytes) -> None:
        if not data or data == b"[DONE]":
            return
        try:
            event = _decode(data)
        except msgspec.DecodeError:
            return
        if not isinstance(event, dict):
            return
        for key in ("id", "model", "created", "system_fingerprint"):
            if key in event and key not in self.meta:
                self.meta[key] = event[key]
        if isinstance(event.get("usage"), dict):
            self.usage = event["usage"]
        for choice in event.get("choices") or []:
            if isinstance(choice, dict):
                self._choice(choice)

    def _choice(self, choice: dict[str, Any]) -> None:
        index = choice.get("index", 0) if isinstance(choice.get("index"), int) else 0
        delta = choice.get("delta") if isinstance(choice.get("delta"), dict) else {}
        text = delta.get("content")
        if isinstance(text, str) and text:
            self.content.setdefault(index, []).append(text)
            self.content_chunks += 1
        for call in delta.get("tool_calls") or []:
            if isinstance(call, dict):
                self._tool_call(index, call)
        if choice.get("finish_reason") is not None:
            self.finish[index] = choice["finish_reason"]

    def _tool_call(self, index: int, call: dict[str, Any]) -> None:
        slot = self.tool_calls.setdefault(index, {}).setdefault(call.get("index", 0), {"function": {}})
        for key in ("id", "type"):
            if call.get(key):
                slot[key] = call[key]
        function = call.get("function") or {}
        if function.get("name"):
            slot["function"]["name"] = function["name"]
        if isinstance(function.get("arguments"), str):
            slot["function"]["arguments"] = slot["function"].get("arguments", "") + function["arguments"]

    def tokens(self) -> tuple[int | None, int | None, bool]:
        """(prompt tokens, completion tokens, whether they were counted rather than reported)."""
        if self.usage is not None:
            return self.usage.get("prompt_tokens"), self.usage.get("completion_tokens"), False
        return None, self.content_chunks, True

    def response(self) -> dict[str, Any]:
        """The stream as one chat completion, the way a non-streamed answer would have read."""
        indexes = sorted(set(self.content) | set(self.tool_calls) | set(self.finish)) or [0]
        choices = []
        for i in indexes:
            message: dict[str, Any] = {"role": "assistant", "content": "".join(self.content.get(i, [])) or None}
            if i in self.tool_calls:
                message["tool_calls"] = [self.tool_calls[i][k] for k in sorted(self.tool_calls[i])]
            choices.append({"index": i, "message": message, "finish_reason": self.finish.get(i)})
        out = {**self.meta, "object": "chat.completion", "choices": choices}
        if self.usage is not None:
            out["usage"] = self.usage
        return out

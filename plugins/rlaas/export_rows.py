"""Stored interactions and pairs as training examples: the rows an SFT or DPO export writes.

Every row of a file has the same shape (plain `{"role", "content"}` text messages), so that
Arrow, `datasets` and TRL read the file; a row that cannot be written so is skipped, and the
reason counted (`not_plain_text`, `no_answer`, `same_text`).
"""

from __future__ import annotations

from typing import Any

# Roles a training conversation may hold; anything else (a function call's result in the old API) is skipped.
ROLES = frozenset({"system", "developer", "user", "assistant", "tool"})


def text_of(content: Any) -> str | None:
    """A message's content as plain text: a string, or a list of text parts joined; None for
    anything else (images, audio, a missing content)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and content and all(
            isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str) for p in content):
        return "".join(p["text"] for p in content)
    return None


def conversation(request: Any) -> list[dict[str, str]] | None:
    """The request's messages as `{"role", "content"}` text pairs, or None when one is not plain
    text (tool calls, images): every row of a file must have the same shape for Arrow to read it."""
    messages = request.get("messages") if isinstance(request, dict) else None
    if not isinstance(messages, list) or not messages:
        return None
    out = []
    for m in messages:
        if not isinstance(m, dict) or m.get("role") not in ROLES or m.get("tool_calls") or m.get("function_call"):
            return None
        text = text_of(m.get("content"))
        if text is None:
            return None
        out.append({"role": m["role"], "content": text})
    return out


def answer_of(response: Any) -> str | None:
    """The first choice's answer text, or None when there is none (an error, a tool call)."""
    try:
        message = response["choices"][0]["message"]
    except (KeyError, IndexError, TypeError):
        return None
    if not isinstance(message, dict) or message.get("tool_calls"):
        return None
    text = text_of(message.get("content"))
    return text if text else None


def sft_example(row: Any) -> tuple[dict | None, str | None]:
    """(example, None) or (None, why it was skipped)."""
    messages = conversation(row["request"])
    if messages is None:
        return None, "not_plain_text"
    answer = row["corrected_text"] if row["corrected_text"] is not None else answer_of(row["response"])
    if not answer:
        return None, "no_answer"
    return {"messages": [*messages, {"role": "assistant", "content": answer}]}, None


def dpo_example(row: Any) -> tuple[dict | None, str | None]:
    prompt = conversation(row["prompt_request"])
    if prompt is None:
        return None, "not_plain_text"
    chosen = row["chosen_text"] if row["chosen_text"] is not None else answer_of(row["chosen_response"])
    rejected = answer_of(row["rejected_response"])
    if not chosen or not rejected:
        return None, "no_answer"
    if chosen == rejected:
        return None, "same_text"  # nothing to learn from, and DPO's loss is undefined on it
    return {"prompt": prompt, "chosen": [{"role": "assistant", "content": chosen}],
            "rejected": [{"role": "assistant", "content": rejected}]}, None

"""The OpenAI request fields the gateway reads; everything else passes through untouched.

These Structs document the bodies in the OpenAPI document and check the few
fields the gateway acts on. The upstream gets the client's body as sent (the
`model` swapped for the policy's upstream model), so fields the gateway does
not know (tools, response_format, seed, ...) work unchanged.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from flywheel.plugins.rlaas.contracts import Route

User = Annotated[str, msgspec.Meta(max_length=256, description="The end user; requests of one user stick to "
                                                               "one policy. Stored only as a hash.")]


class ChatRequest(msgspec.Struct, kw_only=True):
    """`POST /v1/chat/completions`, as in OpenAI's API; unknown fields are passed through."""

    model: Route
    messages: Annotated[list[dict[str, Any]], msgspec.Meta(min_length=1, max_length=10_000)]
    stream: bool = False
    user: User | None = None


class EmbeddingRequest(msgspec.Struct, kw_only=True):
    """`POST /v1/embeddings`, as in OpenAI's API; unknown fields are passed through."""

    model: Route
    input: str | Annotated[list[str | int | list[int]], msgspec.Meta(max_length=100_000)]
    user: User | None = None


class ErrorInfo(msgspec.Struct, kw_only=True):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class GatewayError(msgspec.Struct, kw_only=True):
    """OpenAI's error shape (what its clients parse), with Flywheel's fields beside it."""

    error: ErrorInfo
    status: int
    code: str
    message: str
    field: str | None = None

"""The one error body every 4xx and 5xx response carries."""

from __future__ import annotations

import msgspec


class ErrorDetail(msgspec.Struct, omit_defaults=True):
    """One problem among several (for example one invalid field of many)."""

    code: str
    message: str
    field: str | None = None


class ErrorBody(msgspec.Struct, omit_defaults=True):
    """Body of every error response.

    `code` is machine-readable and stable (`validation_error`, `not_found`,
    `unauthorized`, ...); `field` is the JSON path of the offending value for
    validation errors (for example `$.scopes[1]`).
    """

    status: int
    code: str
    message: str
    field: str | None = None
    details: list[ErrorDetail] = []

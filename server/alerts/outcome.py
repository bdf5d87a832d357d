"""What one delivery attempt came to."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Outcome:
    status_code: int | None = None  # the receiver's HTTP status (webhooks), or the SMTP reply code
    error: str | None = None  # None: delivered
    note: str | None = None  # delivered, with a remark for the log (some recipients refused)

    @property
    def delivered(self) -> bool:
        return self.error is None


class Refused(Exception):
    """The destination is not allowed (allow-list, private address): retrying cannot help."""

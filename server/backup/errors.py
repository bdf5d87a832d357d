"""What stops a backup or a restore, in one line."""

from __future__ import annotations


class BackupError(Exception):
    """A backup or restore could not be done; the message says why."""


class BackupRefused(BackupError):
    """A precondition does not hold (a non-empty target, mismatched Postgres tools, a newer
    release's backup): nothing was changed. The CLI exits with code 2."""


class BackupCorrupt(BackupError):
    """The backup does not match its manifest (an object changed or missing); names the key.
    What the restore had written is removed again. The CLI exits with code 1."""

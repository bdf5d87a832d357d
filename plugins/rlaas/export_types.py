"""Training data exports as the API reads and writes them (`/v1/rlaas/exports`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec

from flywheel.plugins.rlaas.contracts import PolicyName, Route

ExportKind = Literal["sft", "dpo"]
ExportStatus = Literal["queued", "running", "succeeded", "failed"]
PairSource = Literal["comparison", "edit", "reward_gap"]
# The format names written into each manifest: what a reader (TRL) is to expect.
FORMATS = {"sft": "trl.conversational.language_modeling", "dpo": "trl.conversational.preference"}
PAGE_MAX = 500


class ExportSelection(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """Which rows an export holds; every field optional, combined with AND.

    - `route`, `policy`, `policy_version`: the interaction's (for DPO, the pair's
      prompt interaction's: `rlaas_pairs.interaction_id`).
    - `since` (inclusive), `until` (exclusive): the interaction's `ts` (for DPO,
      the pair's `ts`, the later of its two interactions); with a timezone.
    - `min_reward` (SFT only): interactions whose reward is at least this; an
      interaction with no reward yet is left out once it is set.
    - `sources` (DPO only): the pair sources to include (default: all).
    - `max_rows`: stop after this many rows (oldest first).
    """

    route: Route | None = None
    policy: PolicyName | None = None
    policy_version: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] | None = None
    since: Annotated[datetime, msgspec.Meta(tz=True)] | None = None
    until: Annotated[datetime, msgspec.Meta(tz=True)] | None = None
    min_reward: Annotated[float, msgspec.Meta(ge=-1e9, le=1e9)] | None = None
    sources: Annotated[list[PairSource], msgspec.Meta(min_length=1, max_length=3)] | None = None
    max_rows: Annotated[int, msgspec.Meta(ge=1, le=100_000_000)] | None = None


class ExportCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Body of `POST /v1/rlaas/exports`."""

    kind: ExportKind
    selection: ExportSelection = msgspec.field(default_factory=ExportSelection)


class ExportRead(msgspec.Struct, kw_only=True):
    """One export. `object_key` and `manifest_key` are keys in the tenant's object store
    (as `tenant_store` sees it); `sha256` is of the data file's bytes. `skipped` counts
    the rows the selection matched that could not be written, by reason."""

    export_id: UUID
    kind: ExportKind
    status: ExportStatus
    selection: ExportSelection
    job_id: UUID | None
    row_count: int | None
    skipped: dict[str, int]
    size_bytes: int | None
    sha256: str | None
    object_key: str | None
    manifest_key: str | None
    created_at: datetime
    finished_at: datetime | None
    error: str | None


class ExportPage(msgspec.Struct, kw_only=True):
    items: list[ExportRead]
    next_cursor: str | None = None


class ExportDownload(msgspec.Struct, kw_only=True):
    """How to fetch an export's data file.

    `method` says which: `presigned_url` (an S3 store) means `url` is fetched
    as it is, without Flywheel's key, until `expires_at`; `stream` (a local
    folder store, which cannot sign URLs) means `url` is a Flywheel path
    streaming the bytes through the API, fetched with the same key.
    """

    export_id: UUID
    method: Literal["presigned_url", "stream"]
    url: str
    expires_at: datetime | None
    size_bytes: int
    sha256: str
    row_count: int
    media_type: str = "application/x-ndjson"


class Manifest(msgspec.Struct, kw_only=True):
    """`manifest.json` beside each data file."""

    export_id: UUID
    kind: ExportKind
    format: str
    selection: dict[str, Any]
    row_count: int
    skipped: dict[str, int]
    size_bytes: int
    sha256: str
    data_key: str
    created_at: datetime
    finished_at: datetime
    fields: dict[str, str]


class RunExport(msgspec.Struct, forbid_unknown_fields=True):
    """Payload of the `rlaas.export` job: the export (a row of the tenant's) to write."""

    export_id: UUID

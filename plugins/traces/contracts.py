"""Request and response bodies of `/v1/traces`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec

from flywheel.plugins.traces.events import CommitSha, Sha256, TraceEvent

Repository = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,299}$")]
# A test command is an argument list checked against runners.py's allow-list.
Arg = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_./:=,@+-][A-Za-z0-9_./:=,@+ -]{0,199}$")]
ArtifactKind = Annotated[str, msgspec.Meta(pattern=r"^(output|report|patch|workspace|log|other)$")]


class TraceCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    repository: Repository
    base_commit: CommitSha
    task: Annotated[str, msgspec.Meta(min_length=1, max_length=20_000)]
    test_command: Annotated[list[Arg], msgspec.Meta(min_length=1, max_length=32)] | None = None


class Chunk(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    events: Annotated[list[TraceEvent], msgspec.Meta(min_length=1, max_length=5_000)]


class ChunkResult(msgspec.Struct, kw_only=True):
    chunk: int
    accepted: int
    duplicate: int
    replayed: bool = False  # the same chunk was received before: nothing changed
    chained_through: int = 0  # the highest seq the hash chain covers so far
    # Of the events this request stored (a replay: all the chunk's), how many the core's events table
    # holds (`GET /v1/events`, the archive, subscribers); None where no ingestion engine runs (a CLI
    # command). Refused: too old or too far ahead for its partitions; the trace still keeps them.
    events_table: int | None = None
    events_table_refused: int = 0


class Finalize(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    expected_events: Annotated[int, msgspec.Meta(ge=1, le=10_000_000)] | None = None
    workspace_sha256: Sha256 | None = None


class Gap(msgspec.Struct):
    first: int
    last: int


class Metrics(msgspec.Struct, kw_only=True):
    events: int
    duration_s: float
    edits: int
    files_touched: int
    lines_changed: int
    commands: int
    test_runs: int
    fail_to_pass: int  # test runs that passed right after one that failed
    time_to_first_green_s: float | None
    rationale_notes: int
    rationale_words: int


class QaResult(msgspec.Struct, kw_only=True):
    status: str  # passed | failed | error | timed_out | skipped
    backend: str
    exit_code: int | None = None
    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0
    duration_s: float = 0.0
    log_sha256: str | None = None
    junit_sha256: str | None = None
    agrees_with_trace: bool | None = None  # the trace's own last test run had the same outcome
    trace_last_run: dict[str, int] | None = None
    note: str = ""


class Dimension(msgspec.Struct, kw_only=True):
    name: str
    score: int
    weight: float
    justification: str


class Score(msgspec.Struct, kw_only=True):
    judge: str
    rubric_version: str
    overall: float
    dimensions: list[Dimension]
    created_at: datetime | None = None


class ArtifactRead(msgspec.Struct, kw_only=True):
    sha256: str
    size: int
    kind: str
    key: str


class TraceRead(msgspec.Struct, kw_only=True):
    id: UUID
    repository: str
    base_commit: str
    task: str
    test_command: list[str]
    status: str
    created_at: datetime
    finalized_at: datetime | None = None
    events: int = 0
    chunks: int = 0
    metrics: Metrics | None = None
    gaps: list[Gap] = []
    workspace_sha256: str | None = None
    qa: QaResult | None = None
    scores: list[Score] = []
    document_key: str | None = None


class TracePage(msgspec.Struct):
    items: list[TraceRead]
    next_cursor: str | None = None


class ChainLink(msgspec.Struct, kw_only=True):
    seq: int
    event_id: UUID
    problem: str


class ChainReport(msgspec.Struct, kw_only=True):
    ok: bool
    checked: int
    first_broken: ChainLink | None = None
    gaps: list[Gap] = []


class EventRead(msgspec.Struct, kw_only=True):
    seq: int
    event_id: UUID
    kind: str
    ts: datetime
    event: dict[str, Any]
    hash: str | None = None


class KeyRotated(msgspec.Struct):
    version: int

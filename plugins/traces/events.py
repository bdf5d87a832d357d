"""The five trace event types, strictly validated (unknown fields refused, every size bounded).

They are ordinary Flywheel event types (so `flywheel schemas` gives their
JSON Schemas); a trace's events arrive in chunks at
`POST /v1/traces/{id}/chunks/{n}`, where `seq` orders them in the trace.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from flywheel.contracts.events import Event

# A repository path: relative, no `..`, no backslashes or control characters.
PATH_PATTERN = r"^(?!/)(?!.*(^|/)\.\.(/|$))[^\x00-\x1f\x7f\\]{1,1024}$"
RepoPath = Annotated[str, msgspec.Meta(pattern=PATH_PATTERN)]
Seq = Annotated[int, msgspec.Meta(ge=1, le=10_000_000)]
Text = Annotated[str, msgspec.Meta(max_length=200_000)]
Short = Annotated[str, msgspec.Meta(max_length=4_000)]
Count = Annotated[int, msgspec.Meta(ge=0, le=10_000_000)]
Millis = Annotated[float, msgspec.Meta(ge=0, le=86_400_000)]
Sha256 = Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{64}$")]
CommitSha = Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{7,64}$")]
TestId = Annotated[str, msgspec.Meta(max_length=1_000)]


class FileEdit(Event, tag="traces.file_edit", kw_only=True):
    seq: Seq
    path: RepoPath
    diff: Text = ""  # unified diff of this edit
    lines_added: Count = 0
    lines_removed: Count = 0


class CmdRun(Event, tag="traces.cmd_run", kw_only=True):
    seq: Seq
    command: Short
    exit_code: Annotated[int, msgspec.Meta(ge=-255, le=255)]
    duration_ms: Millis = 0.0
    output: Text = ""  # the head of the output; the whole of it as an artifact
    output_sha256: Sha256 | None = None


class TestRun(Event, tag="traces.test_run", kw_only=True):
    seq: Seq
    command: Short
    passed: Count = 0
    failed: Count = 0
    errors: Count = 0
    skipped: Count = 0
    duration_ms: Millis = 0.0
    failing: Annotated[list[TestId], msgspec.Meta(max_length=1_000)] = []
    report_sha256: Sha256 | None = None


class Commit(Event, tag="traces.commit", kw_only=True):
    seq: Seq
    sha: CommitSha
    message: Short
    files: Annotated[list[RepoPath], msgspec.Meta(max_length=10_000)] = []


class RationaleNote(Event, tag="traces.rationale_note", kw_only=True):
    seq: Seq
    kind: Literal["hypothesis", "root_cause", "plan", "reflection", "note"] = "note"
    text: Text


TraceEvent = FileEdit | CmdRun | TestRun | Commit | RationaleNote
EVENT_TYPES = (FileEdit, CmdRun, TestRun, Commit, RationaleNote)
KIND = {cls: cls.__struct_config__.tag.removeprefix("traces.") for cls in EVENT_TYPES}

"""A finalized trace's metrics, from its events in seq order."""

from __future__ import annotations

from flywheel.plugins.traces.contracts import Metrics
from flywheel.plugins.traces.events import CmdRun, Commit, FileEdit, RationaleNote, TestRun


def green(run: TestRun) -> bool:
    return run.failed == 0 and run.errors == 0 and run.passed > 0


def compute_metrics(events: list) -> Metrics:
    edits = [e for e in events if isinstance(e, FileEdit)]
    runs = [e for e in events if isinstance(e, TestRun)]
    notes = [e for e in events if isinstance(e, RationaleNote)]
    files = {e.path for e in edits} | {f for e in events if isinstance(e, Commit) for f in e.files}
    start = min((e.ts for e in events), default=None)
    end = max((e.ts for e in events), default=None)
    fail_to_pass = sum(1 for before, after in zip(runs, runs[1:], strict=False) if not green(before) and green(after))
    first_green = next((r for r in runs if green(r)), None)
    return Metrics(
        events=len(events),
        duration_s=(end - start).total_seconds() if start and end else 0.0,
        edits=len(edits), files_touched=len(files),
        lines_changed=sum(e.lines_added + e.lines_removed for e in edits),
        commands=sum(1 for e in events if isinstance(e, CmdRun)),
        test_runs=len(runs), fail_to_pass=fail_to_pass,
        time_to_first_green_s=(first_green.ts - start).total_seconds() if first_green and start else None,
        rationale_notes=len(notes), rationale_words=sum(len(n.text.split()) for n in notes))

"""The judge used when no endpoint is configured: rules over the trace's metrics and its QA result.

Same input, same scores, always: it is the baseline an LLM judge is
compared against, and what a deployment with no model gets.
"""

from __future__ import annotations

from flywheel.plugins.traces.contracts import Metrics, QaResult
from flywheel.plugins.traces.judge.rubric import Rated, RubricAnswer

JUDGE = "deterministic-1"


def _step(value: float, bands: list[tuple[float, int]], otherwise: int) -> int:
    """The score of the first band whose bound `value` stays within."""
    return next((score for bound, score in bands if value <= bound), otherwise)


def judge(m: Metrics, qa: QaResult | None, root_cause_notes: int) -> RubricAnswer:
    return RubricAnswer(
        correctness=_correctness(qa),
        test_evidence=_evidence(m),
        root_cause=_root_cause(root_cause_notes, m),
        minimality=Rated(_step(m.lines_changed, [(10, 5), (40, 4), (120, 3), (400, 2)], 1),
                         f"{m.lines_changed} lines changed in {m.files_touched} files"),
        process_efficiency=Rated(_step(m.commands + m.test_runs, [(8, 5), (16, 4), (32, 3), (64, 2)], 1),
                                 f"{m.commands} commands and {m.test_runs} test runs"
                                 + (f", first green after {m.time_to_first_green_s:.0f}s"
                                    if m.time_to_first_green_s is not None else ", never green")),
        rationale_quality=Rated(_step(-m.rationale_words, [(-80, 5), (-40, 4), (-15, 3), (-1, 2)], 0),
                                f"{m.rationale_notes} notes, {m.rationale_words} words"))


def _correctness(qa: QaResult | None) -> Rated:
    if qa is None or qa.status in ("skipped", "error"):
        return Rated(2, f"QA could not confirm the fix ({qa.status if qa else 'no QA'}: {qa.note if qa else ''})")
    if qa.status == "passed":
        return Rated(5, f"QA re-ran the tests: {qa.passed} passed, none failed")
    if qa.status == "timed_out":
        return Rated(1, "QA's test run timed out")
    return Rated(1, f"QA re-ran the tests: {qa.failed} failed, {qa.errors} errors")


def _evidence(m: Metrics) -> Rated:
    if m.fail_to_pass:
        return Rated(5, f"{m.fail_to_pass} failing-to-passing transitions in {m.test_runs} test runs")
    if m.time_to_first_green_s is not None:
        return Rated(3, "tests passed, but no failing run showed the bug first")
    if m.test_runs:
        return Rated(1, "tests were run but never passed")
    return Rated(0, "no test runs in the trace")


def _root_cause(notes: int, m: Metrics) -> Rated:
    if notes:
        return Rated(5, f"{notes} root-cause notes")
    if m.rationale_notes:
        return Rated(3, "notes, but none names the root cause")
    return Rated(1, "no rationale recorded")

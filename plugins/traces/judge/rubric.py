"""The rubric: six dimensions scored 0-5, each with a justification, and their weights."""

from __future__ import annotations

from typing import Annotated

import msgspec

from flywheel.plugins.traces.contracts import Dimension, Score

RUBRIC_VERSION = "traces-rubric-1"
WEIGHTS = {
    "correctness": 0.30,        # does the fix make the tests pass, re-run by QA
    "test_evidence": 0.20,      # was the bug reproduced by a failing test, then shown fixed
    "root_cause": 0.15,         # was the cause found and named, not just the symptom patched
    "minimality": 0.10,         # a small change for the problem
    "process_efficiency": 0.10, # few detours between start and green
    "rationale_quality": 0.15,  # notes a reviewer can follow
}
QUESTIONS = {
    "correctness": "Is the fix correct? Use the QA re-run of the tests.",
    "test_evidence": "Did the developer show the bug with a failing test and then the fix with passing tests?",
    "root_cause": "Was the root cause identified and explained, rather than a symptom patched?",
    "minimality": "Is the change as small as the problem allows?",
    "process_efficiency": "Was the path from start to the first green run direct?",
    "rationale_quality": "Are the rationale notes clear, specific and sufficient for a reviewer?",
}
ScoreValue = Annotated[int, msgspec.Meta(ge=0, le=5)]
Justification = Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]


class Rated(msgspec.Struct, forbid_unknown_fields=True):
    score: ScoreValue
    justification: Justification


class RubricAnswer(msgspec.Struct, forbid_unknown_fields=True):
    """What an LLM judge must answer: every dimension, nothing else."""

    correctness: Rated
    test_evidence: Rated
    root_cause: Rated
    minimality: Rated
    process_efficiency: Rated
    rationale_quality: Rated


def to_score(judge: str, answer: RubricAnswer) -> Score:
    dims = [Dimension(name=name, score=getattr(answer, name).score, weight=weight,
                      justification=getattr(answer, name).justification) for name, weight in WEIGHTS.items()]
    overall = round(sum(d.score * d.weight for d in dims) / sum(WEIGHTS.values()), 3)
    return Score(judge=judge, rubric_version=RUBRIC_VERSION, overall=overall, dimensions=dims)

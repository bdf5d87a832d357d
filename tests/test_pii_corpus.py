"""Recall per kind and per locale, and hard negatives left alone, over the multilingual corpus.

tests/data/pii_multilingual.jsonl is written by tests/data/make_pii_multilingual.py
(Faker in 11 locales, in realistic carriers, plus hand-written hard cases and
hard negatives). Targets (issue 19): recall >= 0.97 for every kind and every
locale, >= 0.98 of hard negatives unchanged, and no partial replacement: once
the tokens are taken out, the output is the text without the value, exactly.
"""

from __future__ import annotations

import collections
import json
import re
import time
from pathlib import Path

import pytest

from flywheel.contracts.pii import PiiAllowList, PiiSettings
from flywheel.server.ingest.pii import CompiledAllowList, PiiScrubber

CORPUS = Path(__file__).parent / "data" / "pii_multilingual.jsonl"
KINDS = ("email", "phone", "card", "ssn", "ipv4", "ipv6", "iban", "mac")
TOKEN = re.compile(r"\[(?:EMAIL|PHONE|CARD|SSN|IP|IBAN|MAC)\]")
RECALL_TARGET, NEGATIVE_TARGET = 0.97, 0.98


def rows() -> list[dict]:
    return [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def measured() -> dict:
    scrubber = PiiScrubber()
    everything = CompiledAllowList.build(PiiAllowList(), PiiSettings(optional_kinds=["iban", "mac"]))
    found, total = collections.Counter(), collections.Counter()
    misses, partial, altered, altered_default = [], [], [], []
    negatives = 0
    for row in rows():
        text, kind, span = row["text"], row["kind"], row["span"]
        out, _ = scrubber.scrub_text(text, everything)
        if kind is None:
            negatives += 1
            if out != text:
                altered.append((text, out))
            if scrubber.scrub_text(text)[0] != text:
                altered_default.append(text)
            continue
        keys = (("kind", kind), ("locale", row["locale"]))
        for key in keys:
            total[key] += 1
        if span in out:
            misses.append((kind, row["locale"], text, out, row["note"]))
            continue
        for key in keys:
            found[key] += 1
        if not _whole(text, span, out):
            partial.append((kind, text, out))
    return {"found": found, "total": total, "misses": misses, "partial": partial, "altered": altered,
            "altered_default": altered_default, "negatives": negatives}


def _whole(text: str, span: str, out: str) -> bool:
    """Whether one token in `out` stands for the whole value and nothing of it is left.

    The token may have taken a little more than the value (a CJK local part
    glued to the sentence before it), never less: what is left around it is
    text from around the value.
    """
    at = text.index(span)
    before, after = text[:at], text[at + len(span):]
    return any(before.startswith(out[:t.start()]) and after.endswith(out[t.end():])
               for t in TOKEN.finditer(out))


def _table(m: dict) -> str:
    lines = [f"{'':<16}{'n':>6}{'found':>7}{'recall':>8}"]
    for key in sorted(m["total"]):
        n, f = m["total"][key], m["found"][key]
        lines.append(f"{key[0] + ' ' + key[1]:<16}{n:>6}{f:>7}{f / n:>8.3f}")
    positives = sum(v for k, v in m["total"].items() if k[0] == "kind")
    hits = sum(v for k, v in m["found"].items() if k[0] == "kind")
    lines.append(f"{'all':<16}{positives:>6}{hits:>7}{hits / positives:>8.3f}")
    n = m["negatives"]
    lines.append(f"hard negatives {n}: unchanged {1 - len(m['altered']) / n:.3f} (all kinds on), "
                 f"{1 - len(m['altered_default']) / n:.3f} (defaults); partial replacements {len(m['partial'])}")
    lines += [f"  miss [{k}/{loc}] {t!r} -> {o!r} ({note})" for k, loc, t, o, note in m["misses"][:60]]
    lines += [f"  altered {t!r} -> {o!r}" for t, o in m["altered"][:60]]
    lines += [f"  partial [{k}] {t!r} -> {o!r}" for k, t, o in m["partial"][:60]]
    return "\n".join(lines)


def test_corpus_covers_every_locale_and_kind():
    data = rows()
    locales = collections.Counter(r["locale"] for r in data if r["kind"])
    kinds = collections.Counter(r["kind"] for r in data if r["kind"])
    assert len(locales) >= 12 and all(locales[loc] >= 100 for loc in locales if loc != "hand"), locales
    assert all(kinds[k] >= 30 for k in KINDS), kinds
    assert sum(r["kind"] is None for r in data) >= 1000
    for r in data:
        assert r["kind"] is None or r["text"].count(r["span"]) == 1, r


def test_recall_per_kind_and_locale_and_hard_negatives(measured):
    table = _table(measured)
    print("\nPII multilingual corpus:\n" + table)
    for key, n in measured["total"].items():
        assert measured["found"][key] / n >= RECALL_TARGET, f"{key}: below {RECALL_TARGET}\n{table}"
    n = measured["negatives"]
    assert 1 - len(measured["altered"]) / n >= NEGATIVE_TARGET, table
    assert 1 - len(measured["altered_default"]) / n >= NEGATIVE_TARGET, table
    assert not measured["partial"], "a value was replaced only in part:\n" + table


@pytest.mark.parametrize("text", ["1" * 100_000, "12-" * 33_000, "%41" * 33_000, "a." * 50_000 + "@",
                                  "a@" + "b." * 50_000, "1 2 " * 25_000, "電話" * 50_000 + "@x.com", "1%20" * 25_000,
                                  "ab-" * 33_000, '"a' * 50_000 + "@"])
def test_the_builtin_kinds_take_linear_time_on_long_runs(text):
    """The built-in patterns run on Python's `re`: no start position may rescan a whole run."""
    everything = CompiledAllowList.build(PiiAllowList(), PiiSettings(optional_kinds=["iban", "mac"]))
    started = time.perf_counter()
    PiiScrubber().scrub_text(text, everything)
    assert time.perf_counter() - started < 1.0  # ~0.02 s; a quadratic pattern took 100 s and more

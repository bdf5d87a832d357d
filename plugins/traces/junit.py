"""JUnit XML, as pytest writes it: pass / fail / error / skip counts and the time.

The report is written by the tenant's own code, so it is parsed with care:
no DOCTYPE (no entities to expand), a bounded size, and counts taken from
the test cases rather than trusted from attributes.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import msgspec

MAX_REPORT = 8 * 1024 * 1024


class JunitCounts(msgspec.Struct, kw_only=True):
    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0
    time_s: float = 0.0
    failing: list[str] = []


class BadReport(ValueError):
    pass


def parse_junit(data: bytes) -> JunitCounts:
    if len(data) > MAX_REPORT:
        raise BadReport("the JUnit report is too large")
    if b"<!DOCTYPE" in data.upper() or b"<!ENTITY" in data.upper():
        raise BadReport("the JUnit report declares a DOCTYPE or entities")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise BadReport(f"the JUnit report is not XML: {exc}") from None
    counts = JunitCounts()
    for case in root.iter("testcase"):
        outcome = {child.tag for child in case}
        name = f"{case.get('classname', '')}::{case.get('name', '')}"
        if "error" in outcome:
            counts.errors += 1
            counts.failing.append(name)
        elif "failure" in outcome:
            counts.failed += 1
            counts.failing.append(name)
        elif "skipped" in outcome:
            counts.skipped += 1
        else:
            counts.passed += 1
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    for suite in suites:
        # Collection errors have no testcase: pytest counts them on the suite only.
        if not any(True for _ in suite.iter("testcase")):
            counts.errors += _int(suite.get("errors"))
        counts.time_s += _float(suite.get("time"))
    return counts


def _int(value: str | None) -> int:
    try:
        return max(0, int(value or 0))
    except ValueError:
        return 0


def _float(value: str | None) -> float:
    try:
        return max(0.0, float(value or 0))
    except ValueError:
        return 0.0

"""A tenant's exemptions from scrubbing (field paths, and patterns run on RE2), with its settings.

The settings (`PiiSettings`: phone regions, optional kinds) travel with the
allow-list: both are read, cached and forgotten together for a tenant.
"""

from __future__ import annotations

import hashlib
import re

import structlog

from flywheel.contracts.pii import PiiAllowList, PiiSettings, compile_allow_pattern
from flywheel.server.ingest.pii.settings import DEFAULT_POLICY, PiiPolicy

log = structlog.get_logger("flywheel.ingest.pii")


class CompiledAllowList:
    """A tenant's allow-list, compiled once and cached by the engine.

    Patterns are compiled with RE2 (`compile_allow_pattern`): matching a
    candidate costs time linear in its length, whatever a tenant wrote.
    """

    def __init__(self, paths: list[str], patterns: list[str], policy: PiiPolicy = DEFAULT_POLICY) -> None:
        self.policy = policy
        self._paths = re.compile("|".join(f"(?:{_path_regex(p)})" for p in paths)) if paths else None
        self._patterns = [compile_allow_pattern(p) for p in patterns]

    @classmethod
    def build(cls, allow: PiiAllowList, settings: PiiSettings | None = None) -> CompiledAllowList:
        """Compile a stored allow-list, skipping what RE2 refuses.

        Lists stored before patterns ran on RE2 may hold one it cannot run (a
        backreference, a lookaround). Ingestion must not fail for it, and a
        pattern only ever exempts, so dropping it scrubs more, never less.
        """
        kept = []
        for i, pattern in enumerate(allow.patterns):
            try:
                compile_allow_pattern(pattern)
            except ValueError as exc:
                _log_ignored(i, pattern, str(exc))
                continue
            kept.append(pattern)
        return cls(allow.paths, kept, PiiPolicy.build(settings) if settings is not None else DEFAULT_POLICY)

    def path_allowed(self, path: str) -> bool:
        return bool(self._paths and self._paths.match(path))

    def text_allowed(self, text: str) -> bool:
        if not self._patterns:
            return False
        try:
            data = text.encode()  # once for every pattern: RE2 matches UTF-8
        except UnicodeEncodeError:  # a lone surrogate: no pattern can vouch for it, so scrub
            return False
        return any(p.fullmatch(data) is not None for p in self._patterns)


# Patterns already reported: `build` runs again for each tenant whenever the
# cached list expires (every few seconds), and one line per pattern is enough.
# Only lists stored before RE2 hold such patterns, so this set stays small.
_IGNORED: set[str] = set()


def pattern_fingerprint(pattern: str) -> str:
    """What the log names a pattern by: the first 16 hex digits of its UTF-8 SHA-256."""
    return hashlib.sha256(pattern.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def _log_ignored(index: int, pattern: str, reason: str) -> None:
    if pattern in _IGNORED:
        return
    _IGNORED.add(pattern)
    # Not the pattern itself: an exemption often spells out an address
    # (support@acme\.com), and logs are no place for one. To find it:
    #   SELECT tenant_id, p FROM pii_allow_lists, jsonb_array_elements_text(allow->'patterns') p
    #   WHERE left(encode(sha256(convert_to(p, 'UTF8')), 'hex'), 16) = '<fingerprint>';
    log.warning("pii.allow_pattern_ignored", index=index, fingerprint=pattern_fingerprint(pattern),
                reason=reason)


def _path_regex(path: str) -> str:
    out = ["^"]
    for token in re.findall(r"\$|\.[^.\[]+|\[[^\]]+\]", path):
        if token == "$":
            out.append(r"\$")
        elif token == ".*":
            out.append(r"\.[^.\[]+")
        elif token == "[*]":
            out.append(r"\[\d+\]")
        else:
            out.append(re.escape(token))
    out.append(r"(?:$|[.\[])")  # the path itself and everything under it
    return "".join(out)

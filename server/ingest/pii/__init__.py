"""PII scrubbing of event values before they are stored.

The package, by concern: `patterns` (the built-in kinds and their checks),
`allow_lists` (a tenant's exemptions), `trigger` (which events of a batch
need a full scan at all) and `scrubbing` (`PiiScrubber`).

Built-in scrubbers find e-mail addresses, phone numbers, payment card
numbers (Luhn-checked, known issuer prefixes), US social security numbers
and IPv4/IPv6 addresses in string values at any depth, and replace each
with a token such as ``[EMAIL]``. Plugins add scrubbers through the
`register_scrubbers` hook; tenants exempt field paths or patterns.

Two speed rules, because every event passes through here:
- `needs_scrub()` walks the decoded event and looks only at its string
  values (numbers, timestamps and UUIDs are typed and cannot hold PII),
  with one cheap trigger regex that every built-in kind must match; most
  telemetry (numbers, short ids) has no trigger at all and skips the rest.
  Measured: the combined full regexes over an event's JSON cost ~50 us an
  event; this walk costs a few.
- `flag_events()` does the same for a whole batch at once: the strings of
  every event joined into one text, mapped to character classes with
  `bytes.translate`, and searched with `bytes.find` for where the trigger
  could start (Python's regex engine costs ~17 ns a character even for the
  ASCII trigger; `find` is C speed). The trigger itself runs only on the
  events found so. Only flagged events take the full scan.
- `scrub()` finds every candidate of every scrubber in one string, keeps the
  longest where they overlap, and replaces in one pass: a replacement token
  is never scanned again.

Dict keys are not scrubbed: they are field names chosen by the sender's
code, and rewriting them would break the event's shape.
"""

from __future__ import annotations

from flywheel.server.ingest.pii.allow_lists import CompiledAllowList, pattern_fingerprint
from flywheel.server.ingest.pii.patterns import BUILTIN_SCRUBBERS, luhn_ok
from flywheel.server.ingest.pii.scrubbing import PiiScrubber
from flywheel.server.ingest.pii.trigger import BUILTIN_TRIGGER

__all__ = ["BUILTIN_SCRUBBERS", "BUILTIN_TRIGGER", "CompiledAllowList", "PiiScrubber", "luhn_ok",
           "pattern_fingerprint"]

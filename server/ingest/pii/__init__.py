"""PII scrubbing of event values before they are stored.

The package, by concern: one module per family of kinds (`cards`, `phones`,
`emails`, `network`, `national_ids`), `patterns` (the registry of built-in
kinds), `text` (the normalised view and percent-decoding every detector
shares), `allow_lists` (a tenant's exemptions), `settings` (a tenant's phone
regions and optional kinds), `trigger` (which events of a batch need a full
scan at all) and `scrubbing` (`PiiScrubber`).

Built-in kinds: e-mail addresses, phone numbers (libphonenumber, for the
tenant's regions), payment card numbers (IIN table, Luhn), US social
security numbers and IPv4/IPv6 addresses, found in string values and dict
keys at any depth and each replaced with a token such as ``[EMAIL]``; IBANs
and MAC addresses where the tenant switches them on. Plugins add scrubbers
through the `register_scrubbers` hook; tenants exempt field paths or
patterns. tests/test_pii_corpus.py measures recall per kind and locale.

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
- `scrub()` finds every candidate of every scrubber in one string, merges
  overlapping ones into one span (so no piece of a value is left behind)
  and replaces in one pass: a replacement token is never scanned again.
"""

from __future__ import annotations

from flywheel.server.ingest.pii.allow_lists import CompiledAllowList, pattern_fingerprint
from flywheel.server.ingest.pii.patterns import BUILTIN_KINDS, BUILTIN_SCRUBBERS, luhn_ok
from flywheel.server.ingest.pii.scrubbing import PiiScrubber
from flywheel.server.ingest.pii.settings import DEFAULT_POLICY, PiiPolicy, validate_settings
from flywheel.server.ingest.pii.trigger import BUILTIN_TRIGGER

__all__ = ["BUILTIN_KINDS", "BUILTIN_SCRUBBERS", "BUILTIN_TRIGGER", "DEFAULT_POLICY", "CompiledAllowList",
           "PiiPolicy", "PiiScrubber", "luhn_ok", "pattern_fingerprint", "validate_settings"]

"""PII scrubbing (flywheel.server.ingest.pii): the built-in kinds, overlaps,
nested values, allow-lists, plugin scrubbers, the fast trigger, and precision
and recall measured over a labelled corpus (tests/data/pii_corpus.jsonl,
written by tests/data/make_pii_corpus.py)."""

from __future__ import annotations

import collections
import json
import random
import re
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest
import structlog

from flywheel.contracts.events import GenericEvent
from flywheel.contracts.pii import (
    MAX_ENTRIES,
    MAX_ENTRY_CHARS,
    PiiAllowList,
    Scrubber,
    validate_allow_list,
)
from flywheel.server.ingest.pii import (
    BUILTIN_SCRUBBERS,
    BUILTIN_TRIGGER,
    CompiledAllowList,
    PiiScrubber,
    luhn_ok,
    pattern_fingerprint,
)

CORPUS = Path(__file__).parent / "data" / "pii_corpus.jsonl"
TOKENS = {"email": "[EMAIL]", "phone": "[PHONE]", "card": "[CARD]", "ssn": "[SSN]", "ipv4": "[IP]", "ipv6": "[IP]"}


def corpus() -> list[dict]:
    return [json.loads(line) for line in CORPUS.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def scrubber() -> PiiScrubber:
    return PiiScrubber()


# An employee id as a plugin might define it: EMP- and six digits whose last
# is the sum of the first five mod 10 (so EMP-123455 is one, EMP-123456 is not).
def _employee_check(value: str) -> bool:
    d = [int(c) for c in value[-6:]]
    return sum(d[:5]) % 10 == d[5]


EMPLOYEE = Scrubber(name="employee_id", pattern=r"\bEMP-\d{6}\b", replacement="[EMPLOYEE]", validate=_employee_check)


# ---------------------------------------------------------------------------
# Each built-in kind
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("mail jane.doe@example.org now", "mail [EMAIL] now"),
    ("From: <JOHN.SMITH+billing@Mail.Example.CO.UK>", "From: <[EMAIL]>"),
    ("call (415) 555-0100 today", "call [PHONE] today"),
    ("call 415-555-0100 or 415.555.0100", "call [PHONE] or [PHONE]"),
    ("intl +44 20 7946 0958.", "intl [PHONE]."),
    ("e164=+14155550100", "e164=[PHONE]"),
    ("card 4111 1111 1111 1111 ok", "card [CARD] ok"),
    ("card 5500-0000-0000-0004", "card [CARD]"),
    ("amex 378282246310005", "amex [CARD]"),
    ("amex 3782 822463 10005 08/27", "amex [CARD] 08/27"),
    ("ssn 078-05-1120,", "ssn [SSN],"),
    ("from 203.0.113.42:8080", "from [IP]:8080"),
    ("v6 2001:db8:85a3::8a2e:370:7334 up", "v6 [IP] up"),
    ("full 2001:0db8:85a3:0000:0000:8a2e:0370:7334", "full [IP]"),
    ("mapped ::ffff:192.0.2.128 in", "mapped [IP] in"),
    ("url http://[2001:db8::1]:443/x", "url http://[[IP]]:443/x"),
])
def test_each_builtin_kind_becomes_its_token(scrubber, text, expected):
    out, count = scrubber.scrub_text(text)
    assert out == expected
    assert count == expected.count("[") - text.count("[")


def test_every_builtin_scrubber_is_well_formed():
    for s in BUILTIN_SCRUBBERS:
        re.compile(s.pattern, s.flags)
        assert s.replacement in {*TOKENS.values(), "[IBAN]", "[MAC]"}, s.name


def test_clean_text_is_returned_as_is(scrubber):
    text = "GET /v1/things?id=42 200 in 12ms"
    out, count = scrubber.scrub_text(text)
    assert out is text and count == 0


@pytest.mark.parametrize("number", [
    "4111111111111111", "5500000000000004", "378282246310005", "6011000990139424", "30569309025904",
    "3530111333300000", "4012888888881881", "79927398713", "0", "18",
])
def test_luhn_accepts_valid_numbers(number):
    assert luhn_ok(number)


@pytest.mark.parametrize("number", [
    "4111111111111112", "5500000000000005", "378282246310006", "79927398710", "1234567812345678", "19",
])
def test_luhn_rejects_invalid_numbers(number):
    assert not luhn_ok(number)


def test_card_candidates_failing_luhn_or_prefix_are_left_alone(scrubber):
    for text in ("order 4111 1111 1111 1112", "id 1234567812345670", "mixed 4111 1111-1111 1111"):
        assert scrubber.scrub_text(text) == (text, 0), text
    assert luhn_ok("1234567812345670"), "passes Luhn, but 1 is no card issuer's prefix"


# ---------------------------------------------------------------------------
# Overlaps and the single pass
# ---------------------------------------------------------------------------


def test_overlapping_candidates_keep_the_longest():
    short = Scrubber(name="short", pattern=r"ABC", replacement="[SHORT]")
    long_ = Scrubber(name="long", pattern=r"XABC-\d+", replacement="[LONG]")
    inner = Scrubber(name="inner", pattern=r"C-12", replacement="[INNER]")
    for order in ([short, long_, inner], [inner, long_, short], [long_, inner, short]):
        s = PiiScrubber(order)
        assert s.scrub_text("id XABC-123 and ABC") == ("id [LONG] and [SHORT]", 2), order
    # Built-ins overlap too: the IPv4 inside an IPv4-mapped IPv6 address is one [IP], nothing left over.
    assert PiiScrubber().scrub_text("peer ::ffff:192.0.2.128 up") == ("peer [IP] up", 1)


def test_replacements_are_never_scanned_again():
    # A scrubber that would match the token another one writes.
    word = Scrubber(name="word", pattern=r"EMAIL|\[", replacement="[WORD]")
    s = PiiScrubber([*BUILTIN_SCRUBBERS, word])
    assert s.scrub_text("to jane@example.com") == ("to [EMAIL]", 1)


def test_a_card_is_found_beside_other_numbers(scrubber):
    # A greedy candidate that swallows the expiry, the CVC or a count before
    # the card fails Luhn; the card must still be found.
    for text, expected in [
        ("card 4111 1111 1111 1111 08/27", "card [CARD] 08/27"),
        ("card 4111-1111-1111-1111 08/27 123", "card [CARD] 08/27 123"),
        ("card 4111111111111111 08/27", "card [CARD] 08/27"),
        ("card 4111 1111 1111 1111 123", "card [CARD] 123"),
        ("qty 2 4111 1111 1111 1111", "qty 2 [CARD]"),
    ]:
        assert scrubber.scrub_text(text)[0] == expected, text


# ---------------------------------------------------------------------------
# Nested values
# ---------------------------------------------------------------------------


def test_nested_values_and_keys_are_scrubbed_at_any_depth(scrubber):
    value = {
        "jane@example.com": "key is an e-mail, value is not",
        "a": {"b": [{"c": ["x", {"d": "mail bob@example.com"}]}, "tel 415-555-0100"]},
        "n": 4111111111111111,  # a number, not a string: typed values hold no PII
        "ok": True,
        "none": None,
    }
    out, count = scrubber.scrub(value)
    assert count == 3
    assert list(out) == ["[EMAIL]", "a", "n", "ok", "none"], "the e-mail key scrubbed, order kept"
    assert out["[EMAIL]"] == "key is an e-mail, value is not"
    assert out["a"]["b"][0]["c"][1]["d"] == "mail [EMAIL]"
    assert out["a"]["b"][1] == "tel [PHONE]"
    assert out["n"] == 4111111111111111
    assert value["a"]["b"][0]["c"][1]["d"] == "mail bob@example.com", "the input is not modified"


def test_unchanged_values_are_returned_as_the_same_object(scrubber):
    clean = {"a": [1, 2, {"b": "nothing here"}], "c": {"d": "2024-03-15T10:20:30Z"}}
    out, count = scrubber.scrub(clean)
    assert out is clean and count == 0
    mixed = {"clean": {"x": ["y"]}, "list": ["a", "b"], "dirty": {"e": "a@example.com", "f": ["z"]}}
    out, count = scrubber.scrub(mixed)
    assert count == 1 and out is not mixed
    assert out["clean"] is mixed["clean"] and out["list"] is mixed["list"]
    assert out["dirty"] is not mixed["dirty"] and out["dirty"]["f"] is mixed["dirty"]["f"]


def test_needs_scrub_walks_structs_dicts_and_lists(scrubber):
    now = datetime.now(UTC)
    assert not scrubber.needs_scrub(GenericEvent(event_id=uuid.uuid4(), ts=now, attributes={"i": 1, "v": [1.5, None]}))
    assert scrubber.needs_scrub(GenericEvent(event_id=uuid.uuid4(), ts=now,
                                             attributes={"deep": [{"x": ("t", "a@b.io")}]}))
    assert scrubber.needs_scrub(GenericEvent(event_id=uuid.uuid4(), ts=now, subject_id="415-555-0100"))
    assert scrubber.needs_scrub({"jane@example.com": 1}), "keys are scrubbed, so looked at"
    assert not scrubber.needs_scrub({"model": 1, "n": "x"})


def test_keys_scrubbed_to_one_token_keep_both_values(scrubber):
    out, count = scrubber.scrub({"a@example.com": 1, "b@example.com": 2, "[EMAIL]": 3, 7: "x"})
    assert out == {"[EMAIL]": 1, "[EMAIL]#2": 2, "[EMAIL]#3": 3, 7: "x"} and count == 2


# ---------------------------------------------------------------------------
# Allow-lists
# ---------------------------------------------------------------------------

EVENT = {
    "subject_id": "jane@example.com",
    "attributes": {
        "support": "help@flywheel.dev",
        "support_backup": "backup@flywheel.dev",
        "contact": {"email": "c@example.com", "phones": ["415-555-0100", {"fax": "415-555-0199"}]},
        "users": {"alice": {"email": "alice@example.com", "ip": "203.0.113.1"},
                  "bob": {"email": "bob@example.com", "ip": "203.0.113.2"}},
        "hosts": [{"ip": "198.51.100.1", "owner": "ops@example.com"}, {"ip": "198.51.100.2"}],
    },
}


def scrub_with(paths=(), patterns=()):
    allow = CompiledAllowList.build(PiiAllowList(paths=list(paths), patterns=list(patterns)))
    return PiiScrubber().scrub(EVENT, allow)[0]


def test_allow_path_exempts_that_field_only():
    out = scrub_with(["$.attributes.support"])
    assert out["attributes"]["support"] == "help@flywheel.dev"
    assert out["attributes"]["support_backup"] == "[EMAIL]", "a sibling sharing the name's prefix is not exempt"
    assert out["subject_id"] == "[EMAIL]"


def test_allow_path_exempts_the_whole_subtree_but_not_siblings():
    out = scrub_with(["$.attributes.contact"])
    assert out["attributes"]["contact"] == EVENT["attributes"]["contact"]
    assert out["attributes"]["contact"] is EVENT["attributes"]["contact"]
    assert out["attributes"]["support"] == "[EMAIL]"
    assert out["attributes"]["users"]["alice"]["email"] == "[EMAIL]"


def test_allow_path_star_matches_any_key():
    out = scrub_with(["$.attributes.users.*.email"])
    assert out["attributes"]["users"]["alice"]["email"] == "alice@example.com"
    assert out["attributes"]["users"]["bob"]["email"] == "bob@example.com"
    assert out["attributes"]["users"]["alice"]["ip"] == "[IP]", "only the named field under each key"
    assert out["attributes"]["hosts"][0]["owner"] == "[EMAIL]"


def test_allow_path_index_star_matches_any_index_only():
    out = scrub_with(["$.attributes.hosts[*].ip"])
    assert [h["ip"] for h in out["attributes"]["hosts"]] == ["198.51.100.1", "198.51.100.2"]
    assert out["attributes"]["hosts"][0]["owner"] == "[EMAIL]"
    out = scrub_with(["$.attributes.hosts[1]"])
    assert out["attributes"]["hosts"][0]["ip"] == "[IP]" and out["attributes"]["hosts"][1]["ip"] == "198.51.100.2"
    out = scrub_with(["$.attributes.contact.phones[*]"])
    assert out["attributes"]["contact"]["phones"] == ["415-555-0100", {"fax": "415-555-0199"}]
    assert out["attributes"]["contact"]["email"] == "[EMAIL]"
    allow = CompiledAllowList(["$.a[*]"], [])
    assert allow.path_allowed("$.a[0]") and allow.path_allowed("$.a[12].b")
    assert not allow.path_allowed("$.a.b") and not allow.path_allowed("$.ab[0]")


def test_allow_root_exempts_everything():
    assert scrub_with(["$"]) is EVENT


def test_allow_pattern_keeps_whole_matches_only():
    out = scrub_with(patterns=[r".*@flywheel\.dev", r"203\.0\.113\.\d+"])
    assert out["attributes"]["support"] == "help@flywheel.dev"
    assert out["attributes"]["support_backup"] == "backup@flywheel.dev"
    assert out["attributes"]["users"]["alice"]["ip"] == "203.0.113.1"
    assert out["subject_id"] == "[EMAIL]" and out["attributes"]["hosts"][0]["ip"] == "[IP]"
    s = PiiScrubber()
    allow = CompiledAllowList([], [r".*@example\.org"])
    # The pattern must match a candidate's whole text, not a part of it.
    assert s.scrub_text("a@example.org b@example.org.evil.com", allow) == ("a@example.org [EMAIL]", 1)
    # A pattern exempts matches, not the rest of the string.
    assert s.scrub_text("a@example.org 415-555-0100", allow) == ("a@example.org [PHONE]", 1)


def test_scrub_text_honours_the_path_it_is_given():
    allow = CompiledAllowList(["$.note"], [])
    s = PiiScrubber()
    assert s.scrub_text("a@example.com", allow, "$.note") == ("a@example.com", 0)
    assert s.scrub_text("a@example.com", allow, "$.notes") == ("[EMAIL]", 1)


def test_validate_allow_list_accepts_good_entries():
    validate_allow_list(PiiAllowList(paths=["$", "$.attributes.email", "$.items[*].ip", "$.a.*.b", "$.x[3]"],
                                     patterns=[r".*@example\.org", r"10\.\d+\.\d+\.\d+"]))


@pytest.mark.parametrize(("allow", "message"), [
    (PiiAllowList(paths=["$.ok", "attributes.email"]), "paths[1]: 'attributes.email' is not a field path"),
    (PiiAllowList(paths=["$.ok", "$.ok", "$.a..b"]), "paths[2]:"),
    (PiiAllowList(paths=["$.a[x]"]), "paths[0]:"),
    (PiiAllowList(paths=["$.a b"]), "paths[0]:"),
    (PiiAllowList(patterns=["fine", "(unclosed"]), "patterns[1]: not a valid regular expression"),
    (PiiAllowList(paths=["$.x"] * (MAX_ENTRIES + 1)), f"paths: at most {MAX_ENTRIES} entries"),
    (PiiAllowList(patterns=["a", "b" * (MAX_ENTRY_CHARS + 1)]), f"patterns[1]: longer than {MAX_ENTRY_CHARS}"),
    # What the linear-time engine (RE2) cannot run, each named for what it is.
    (PiiAllowList(patterns=["ok", r"(\w+)@\1"]), "patterns[1]: backreferences are not supported"),
    (PiiAllowList(patterns=[r"(?P<u>\w+)@(?P=u)"]), "patterns[0]: backreferences are not"),
    (PiiAllowList(patterns=[r".*(?<!x)@example\.com"]), "patterns[0]: lookarounds are not"),
    (PiiAllowList(patterns=[r"(?=.*@).*"]), "patterns[0]: lookarounds are not supported"),
    (PiiAllowList(patterns=[r"(?>a+)@b"]), "patterns[0]: atomic groups and possessive quantifiers"),
    (PiiAllowList(patterns=[r"a++@b"]), "patterns[0]: atomic groups and possessive quantifiers"),
    (PiiAllowList(patterns=[r".*@example\.com\Z"]), "patterns[0]: \\Z is not supported: write \\z"),
    (PiiAllowList(patterns=[r"\p{L}{100}"]), "patterns[0]: too large once compiled"),
    (PiiAllowList(patterns=[r"(a{50}){50}"]), "patterns[0]: a repetition count is over 1000"),
])
def test_validate_allow_list_names_the_bad_entry(allow, message):
    with pytest.raises(ValueError) as err:
        validate_allow_list(allow)
    assert str(err.value).startswith(message), str(err.value)
    if "not supported" in message and "\\Z" not in message:
        assert str(err.value).endswith("patterns run on a linear-time engine (RE2)"), str(err.value)


def test_allow_patterns_run_in_linear_time():
    """Patterns that backtrack exponentially in Python's `re` take microseconds on RE2."""
    bombs = [r"([a-z@.]+)+!", r"(a+)+$", r"(a|aa)+b", r"(.*a){20}"]
    validate_allow_list(PiiAllowList(patterns=bombs))
    allow = CompiledAllowList([], bombs)
    started = time.perf_counter()
    for n in (30, 300, 3000):
        assert not allow.text_allowed("a" * n + "@b.com")
    assert allow.text_allowed("aaaa!") and allow.text_allowed("a" * 40 + "b")
    assert time.perf_counter() - started < 0.5  # ~0.1 ms; Python's re: longer than the universe


def test_allow_patterns_are_re2_syntax():
    # RE2's Unicode classes, and ASCII-only \d (Python's str patterns match any Unicode digit).
    allow = CompiledAllowList([], [r"\p{Greek}+@example\.com", r"\d{3}-\d{4}"])
    assert allow.text_allowed("αβγ@example.com") and not allow.text_allowed("abc@example.com")
    assert allow.text_allowed("555-0100") and not allow.text_allowed("٥٥٥-٠١٠٠")
    anything = CompiledAllowList([], [r".*@example\.com"])
    assert anything.text_allowed("x@example.com")
    assert not anything.text_allowed("\ud800@example.com"), "what RE2 cannot read is scrubbed"


def test_build_skips_a_stored_pattern_re2_refuses_and_says_so_once():
    legacy = rf"(?<!x)y{uuid.uuid4().hex}"  # unique: each refused pattern is logged once a process
    stored = PiiAllowList(paths=["$.note"], patterns=[legacy, r".*@example\.com"])
    with structlog.testing.capture_logs() as logs:
        allow = CompiledAllowList.build(stored)
        again = CompiledAllowList.build(stored)
    for compiled in (allow, again):
        assert compiled.text_allowed("a@example.com") and compiled.path_allowed("$.note")
        assert not compiled.text_allowed("y" + legacy[len("(?<!x)y"):]), "it exempts nothing"
    assert [(e["event"], e["index"], e["fingerprint"]) for e in logs] == [
        ("pii.allow_pattern_ignored", 0, pattern_fingerprint(legacy))]
    assert legacy not in repr(logs), "a pattern may spell out an address: logged by fingerprint"
    assert "lookarounds" in logs[0]["reason"]
    with pytest.raises(ValueError, match="lookarounds"):
        CompiledAllowList([], stored.patterns)  # built directly, a pattern must compile


def test_allow_list_refuses_unknown_fields():
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"paths": [], "fields": []}, PiiAllowList)


# ---------------------------------------------------------------------------
# Plugin scrubbers
# ---------------------------------------------------------------------------


def test_a_plugin_scrubber_applies_and_its_rejects_are_left_alone():
    s = PiiScrubber([*BUILTIN_SCRUBBERS, EMPLOYEE])
    assert _employee_check("EMP-123455") and not _employee_check("EMP-123456")
    out, count = s.scrub_text("EMP-123455 approved EMP-123456 for jane@example.com")
    assert (out, count) == ("[EMPLOYEE] approved EMP-123456 for [EMAIL]", 2)
    out, count = s.scrub({"badge": ["EMP-000000", "EMP-000001"]})
    assert out == {"badge": ["[EMPLOYEE]", "EMP-000001"]} and count == 1


def test_plugin_scrubbers_feed_the_fast_trigger():
    text = "badge EMP-123455"
    assert not re.search(BUILTIN_TRIGGER, text), "no built-in kind would look at this string"
    assert not PiiScrubber().needs_scrub({"a": text})
    assert PiiScrubber([*BUILTIN_SCRUBBERS, EMPLOYEE]).needs_scrub({"a": text})
    # A plugin's flags carry over to the trigger.
    loud = Scrubber(name="code", pattern=r"secret-[a-z]+", replacement="[CODE]", flags=re.IGNORECASE)
    s = PiiScrubber([*BUILTIN_SCRUBBERS, loud])
    assert s.needs_scrub("SECRET-ABC") and s.scrub_text("SECRET-ABC") == ("[CODE]", 1)


# Plugin patterns of every shape: with groups, a backreference, an inline
# global flag, flags of their own. The trigger must not miss any of them.
GROUPED = Scrubber(name="grouped", pattern=r"(ab)+c", replacement="[G]")
BACKREF = Scrubber(name="backref", pattern=r"\b(\d)\1\1-ZZ\b", replacement="[B]")
INLINE = Scrubber(name="inline", pattern=r"(?i)badge-[a-z]{3}", replacement="[I]")
VERBOSE = Scrubber(name="verbose", pattern=r"ref \s* Q\d{3}  # a comment", replacement="[V]", flags=re.VERBOSE)
TRICKY = [GROUPED, BACKREF, INLINE, VERBOSE]


def test_the_trigger_keeps_each_plugin_pattern_meaning():
    s = PiiScrubber([*BUILTIN_SCRUBBERS, EMPLOYEE, *TRICKY])
    for text, expected in [("id 777-ZZ", "id [B]"), ("BADGE-XYZ", "[I]"), ("refQ123", "[V]"), ("ref Q123", "[V]"),
                           ("ababc", "[G]"), ("EMP-123455", "[EMPLOYEE]")]:
        assert s.scrub_text(text)[0] == expected, text
        assert s.needs_scrub({"a": [text]}), text
    assert not s.needs_scrub({"a": ["778-ZZ", "badge-1", "ref 123", "abd", "plain words"]})


def test_a_plugin_can_replace_the_builtins():
    s = PiiScrubber([EMPLOYEE])
    assert s.scrub_text("EMP-123455 jane@example.com") == ("[EMPLOYEE] jane@example.com", 1)


# ---------------------------------------------------------------------------
# The fast trigger never misses what the full scan finds
# ---------------------------------------------------------------------------

_ALPHABET = "0123456789" * 4 + "abcdefABCDEF" + " .-:+()@/_%,[]#xyz" + "\t"
_FRAGMENTS = ["@", "::", ":", ".", "-", "+1 ", "+44 ", "(415) ", "415", "555", "0100", "4111", " 1111", "-1111",
              "192.", "0.", "255.", "2001:db8", "ffff:", "fe80::", ".com", "example", "user", "123-45-", "6789",
              "EMP-", "378282246310005", "  ", "\n", "é", "777-ZZ", "ab", "c", "badge-", "ref", "Q123"]


def _random_strings(rng: random.Random, texts: list[str], n: int):
    for _ in range(n):
        roll = rng.random()
        if roll < 0.3:
            yield "".join(rng.choice(_ALPHABET) for _ in range(rng.randint(1, 40)))
        elif roll < 0.7:
            yield "".join(rng.choice(_FRAGMENTS + [rng.choice(_ALPHABET)]) for _ in range(rng.randint(1, 12)))
        else:
            # A corpus line cut, spliced and perturbed.
            a, b = rng.choice(texts), rng.choice(texts)
            i, j = sorted(rng.randint(0, len(a)) for _ in range(2))
            mutated = list(a[i:j] + b[rng.randint(0, len(b)):])
            for _ in range(rng.randint(0, 3)):
                if mutated:
                    mutated[rng.randrange(len(mutated))] = rng.choice(_ALPHABET)
            yield "".join(mutated)


@pytest.mark.parametrize("scrubbers", [BUILTIN_SCRUBBERS, [*BUILTIN_SCRUBBERS, EMPLOYEE, *TRICKY]],
                         ids=["builtin", "plugins"])
def test_needs_scrub_is_true_whenever_scrub_text_finds_something(scrubbers):
    s = PiiScrubber(scrubbers)
    texts = [row["text"] for row in corpus()]
    rng = random.Random(1234)
    checked = found = 0
    for text in [*texts, *_random_strings(rng, texts, 30_000)]:
        _, count = s.scrub_text(text)
        checked += 1
        if count:
            found += 1
            assert s.needs_scrub(text), f"the trigger misses {text!r}"
            assert s.needs_scrub({"k": [text]})
    assert found > 1000, f"only {found} of {checked} strings held anything: the generator is too weak"


# Batches as the ingestion path sees them: strings spread over events and
# fields, several kinds of plugin patterns, ASCII and non-ASCII batches.
ANCHORED = Scrubber(name="anchored", pattern=r"^ZZ-\d{4}$", replacement="[Z]")


@pytest.mark.parametrize("scrubbers", [BUILTIN_SCRUBBERS, [*BUILTIN_SCRUBBERS, EMPLOYEE],
                                       [*BUILTIN_SCRUBBERS, EMPLOYEE, *TRICKY], [*BUILTIN_SCRUBBERS, ANCHORED]],
                         ids=["builtin", "joinable-plugin", "tricky-plugins", "anchored-plugin"])
def test_flag_events_flags_every_event_that_scrubbing_changes(scrubbers):
    s = PiiScrubber(scrubbers)
    texts = [row["text"] for row in corpus()]
    rng = random.Random(99)
    strings = [*texts, *_random_strings(rng, texts, 12_000), "ZZ-1234", "x ZZ-1234"]
    now = datetime.now(UTC)
    flagged_total = changed_total = walked_total = 0
    while strings:
        events = []
        for _ in range(rng.randint(1, 60)):
            picks = [strings.pop() for _ in range(min(len(strings), rng.randint(0, 4)))]
            picks += [None] * (4 - len(picks))
            events.append(GenericEvent(event_id=uuid.uuid4(), ts=now, subject_id=picks[0], attributes={
                "n": rng.randint(0, 10**15), "a": picks[1], "deep": [{"b": picks[2]}, 1.5], "c": picks[3]}))
        flags = s.flag_events(events)
        assert len(flags) == len(events)
        for event, flag in zip(events, flags):
            changed = s.scrub_event(event)[1] > 0
            assert flag or not changed, f"flag_events misses {event}"
            assert flag or not s.needs_scrub(event), "never looser than the per-event walk"
            flagged_total += flag
            changed_total += changed
            walked_total += s.needs_scrub(event)
    assert changed_total > 200, "the generator is too weak"
    # About as selective as the per-event walk (its ASCII net is a little wider).
    assert flagged_total <= walked_total * 1.1, (flagged_total, walked_total, changed_total)


def test_scrub_event_leaves_typed_fields_alone():
    # A plugin pattern that would match inside a UUID's or a timestamp's text.
    hexy = Scrubber(name="hexy", pattern=r"[0-9a-f]{8}|\d{4}-\d{2}", replacement="[H]")
    s = PiiScrubber([*BUILTIN_SCRUBBERS, hexy])
    event = GenericEvent(event_id=uuid.uuid4(), ts=datetime.now(UTC), subject_id="deadbeef",
                         attributes={"note": "mail jane@example.com", "n": 1})
    document, count = s.scrub_event(event)
    assert count == 2 and document["subject_id"] == "[H]" and document["attributes"]["note"] == "mail [EMAIL]"
    assert document["event_id"] == str(event.event_id) and document["type"] == "core.generic"
    assert msgspec.convert(document, GenericEvent).ts == event.ts


def test_flag_events_tells_events_apart():
    s = PiiScrubber()
    now = datetime.now(UTC)

    def ev(**attributes):
        return GenericEvent(event_id=uuid.uuid4(), ts=now, subject_id="drive-12", attributes=attributes)

    events = [ev(model="ST4000DM000", n=4000787030016), ev(note="mail jane@example.com"), ev(x="1234"),
              ev(ip="10.0.0.1"), ev(deep={"list": ["ok", {"phone": "+44 20 7946 0958"}]}), ev(x="5678"),
              ev(tel="４１５-５５５-０１００")]
    assert s.flag_events(events) == [False, True, False, True, True, False, True]
    assert s.flag_events([]) == []
    # Digits split over two strings, or over two events, are not one run.
    assert s.flag_events([ev(a="12345", b="67890"), ev(a="1234")]) == [False, False]
    # Candidates that are not triggers, events without strings, the shortest runs.
    bare = GenericEvent(event_id=uuid.uuid4(), ts=now)
    events = [bare, ev(indent="x       y", ratio="a:b"), bare, ev(ip="1.2.3.4"), bare, ev(v="1.2.3"),
              ev(at="a@b"), bare]
    assert s.flag_events(events) == [False, False, False, True, False, False, True, False]


# ---------------------------------------------------------------------------
# Precision and recall over the labelled corpus
# ---------------------------------------------------------------------------


def test_corpus_is_as_generated():
    rows = corpus()
    kinds = collections.Counter(row["kind"] for row in rows)
    assert len(rows) >= 350
    assert all(kinds[k] >= 35 for k in TOKENS), kinds
    assert kinds[None] >= 120
    for row in rows:
        assert set(row) == {"text", "kind", "span", "note"}
        if row["kind"] is None:
            assert row["span"] is None
        else:
            assert row["text"].count(row["span"]) == 1, row


def test_precision_and_recall_over_the_corpus(scrubber):
    rows = corpus()
    found: collections.Counter = collections.Counter()
    exact: collections.Counter = collections.Counter()
    total: collections.Counter = collections.Counter()
    misses, false_positives = [], []
    near_misses = 0
    for row in rows:
        text, kind, span = row["text"], row["kind"], row["span"]
        out, _ = scrubber.scrub_text(text)
        if kind is None:
            near_misses += 1
            if out != text:
                false_positives.append((text, out, row["note"]))
            continue
        total[kind] += 1
        if out != text and span not in out:
            found[kind] += 1
            # Stricter: the whole span became the kind's token and nothing else changed
            # (no fragment left behind, as "::ffff:192" → "[IP].0.2.128" once did).
            exact[kind] += out == text.replace(span, TOKENS[kind])
        else:
            misses.append((kind, text, row["note"]))

    tp, positives, fp = sum(found.values()), sum(total.values()), len(false_positives)
    precision, recall = tp / (tp + fp), tp / positives
    lines = [f"{'kind':<8}{'n':>5}{'found':>7}{'exact':>7}{'recall':>8}"]
    for kind in TOKENS:
        lines.append(f"{kind:<8}{total[kind]:>5}{found[kind]:>7}{exact[kind]:>7}{found[kind] / total[kind]:>8.3f}")
    lines.append(f"{'all':<8}{positives:>5}{tp:>7}{sum(exact.values()):>7}{recall:>8.3f}")
    lines.append(f"near-misses {near_misses}, false positives {fp}; precision {precision:.3f}, recall {recall:.3f}")
    lines += [f"  miss [{k}] {t!r} ({n})" for k, t, n in misses]
    lines += [f"  false positive {t!r} -> {o!r} ({n})" for t, o, n in false_positives]
    print("\nPII corpus:\n" + "\n".join(lines))

    # Measured: precision 0.992, recall 0.985. The known misses are
    # national phone numbers and SSNs written with spaces only ("415 555
    # 0100", "123 45 6789"): without context those shapes are everyday
    # number groups, so the scrubber leaves them (phone and ssn recall about
    # 0.95). The known false positives are shapes no pattern can tell apart
    # from PII: "icon@2x.png" (an e-mail address by shape) and a four-part
    # version "1.0.0.0" (an IPv4 address by shape).
    assert precision >= 0.97 and recall >= 0.97, "\n".join(lines)
    for kind in TOKENS:
        assert found[kind] / total[kind] >= 0.9, "\n".join(lines)
    assert exact == found, "a found positive left part of itself in the text:\n" + "\n".join(lines)

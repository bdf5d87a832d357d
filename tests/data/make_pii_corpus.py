"""Write tests/data/pii_corpus.jsonl: labelled PII positives and near-misses.

Deterministic (fixed seed, stdlib only): run it again and the file is the
same. Each line is ``{"text", "kind", "span", "note"}``:

- ``kind`` is one of email, phone, card, ssn, ipv4, ipv6 for a positive, and
  ``span`` is the exact PII substring of ``text`` (it appears once).
- ``kind`` and ``span`` are null for a near-miss: text that looks like PII to
  a careless pattern (order numbers, dates, versions, hashes, ...) but holds
  none.

Labels say what the text truly is, not what any scrubber makes of it. A few
positives are formats a scrubber may well miss (national numbers written
with spaces, for one) and a few near-misses are hard to tell apart from PII
by shape alone (a four-part version string that is also a valid IPv4
address); they are here on purpose, so the measured figures are honest.

    python tests/data/make_pii_corpus.py
"""

from __future__ import annotations

import json
import random
import string
from pathlib import Path

SEED = 20240315
OUT = Path(__file__).with_name("pii_corpus.jsonl")

rng = random.Random(SEED)
rows: list[dict] = []


def add(text: str, kind: str | None, span: str | None, note: str) -> None:
    if span is not None:
        assert text.count(span) == 1, (text, span)
    rows.append({"text": text, "kind": kind, "span": span, "note": note})


def pick(seq):
    return seq[rng.randrange(len(seq))]


def digits(n: int) -> str:
    return "".join(rng.choice(string.digits) for _ in range(n))


def hexs(n: int) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


def ts() -> str:
    return (f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:"
            f"{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}.{digits(3)}Z")


FIRST = ["jane", "john", "maria", "li", "ahmed", "olga", "pierre", "sam", "nkechi", "tomas", "yuki", "priya"]
LAST = ["doe", "smith", "garcia", "wei", "hassan", "ivanova", "martin", "lee", "okafor", "novak", "tanaka", "patel"]


# ---------------------------------------------------------------------------
# e-mail
# ---------------------------------------------------------------------------

def email() -> tuple[str, str]:
    f, last = pick(FIRST), pick(LAST)
    local, note = pick([
        (f"{f}.{last}", "first.last"),
        (f"{f}{rng.randint(1, 99)}", "name with digits"),
        (f"{f}_{last}", "underscore"),
        (f"{f}.{last}+{pick(['news', 'billing', 'test', 'spam'])}", "plus tag"),
        (f"{f[0]}{last}", "initial+last"),
        (f"{f}-{last}", "hyphen"),
        (f"{f.upper()}.{last.upper()}", "uppercase"),
    ])
    domain, dnote = pick([
        ("example.com", ""),
        ("mail.example.co.uk", "subdomain, 2-level TLD"),
        ("corp.acme-industries.io", "hyphenated subdomain"),
        ("Example.ORG", "mixed-case domain"),
        ("students.uni-example.edu", "subdomain"),
        ("eu.mail.example.net", "deep subdomain"),
        ("example.technology", "long TLD"),
        ("gmail.com", ""),
    ])
    return f"{local}@{domain}", ", ".join(x for x in (note, dnote) if x)


EMAIL_TEMPLATES = [
    "Password reset requested for {v}",
    "user={v} action=login status=ok",
    "From: Support Team <{v}>",
    "Please contact {v} for access.",
    '{{"reporter": "{v}", "severity": "low"}}',
    "mailto:{v}?subject=Invoice",
    "invite sent to {v}, expires in 7 days",
    "Bounce: delivery to {v} failed (550 mailbox unavailable)",
    "Customer wrote: hi, my email is {v} thanks",
    "cc={v};bcc=",
    "[{t}] INFO notifier: queued digest for {v}",
    "Reply-To: {v}",
]

for _ in range(42):
    v, note = email()
    add(pick(EMAIL_TEMPLATES).format(v=v, t=ts()), "email", v, f"email: {note or 'plain'}")


# ---------------------------------------------------------------------------
# phone numbers
# ---------------------------------------------------------------------------

def area() -> str:
    return f"{rng.randint(2, 9)}{rng.randint(0, 9)}{rng.randint(0, 9)}"


def us() -> tuple[str, str, str]:
    return area(), f"{rng.randint(2, 9)}{digits(2)}", digits(4)


def phone() -> tuple[str, str]:
    a, b, c = us()
    return pick([
        (f"({a}) {b}-{c}", "US (415) 555-0100"),
        (f"({a}){b}-{c}", "US (415)555-0100"),
        (f"{a}-{b}-{c}", "US 415-555-0100"),
        (f"{a}.{b}.{c}", "US 415.555.0100"),
        (f"+1 {a} {b} {c}", "+1 spaced"),
        (f"+1-{a}-{b}-{c}", "+1 dashed"),
        (f"+1{a}{b}{c}", "E.164 US"),
        (f"+1 ({a}) {b}-{c}", "+1 (415) 555-0100"),
        (f"+44 20 {digits(4)} {digits(4)}", "UK London"),
        (f"+44 7{digits(3)} {digits(6)}", "UK mobile"),
        (f"+44 (0)20 {digits(4)} {digits(4)}", "UK with (0)"),
        (f"+49 30 {digits(7)}", "Germany Berlin"),
        (f"+49 151 {digits(8)}", "Germany mobile"),
        (f"+33 1 {digits(2)} {digits(2)} {digits(2)} {digits(2)}", "France pairs"),
        (f"+33 6{digits(8)}", "France mobile compact"),
        (f"+81-3-{digits(4)}-{digits(4)}", "Japan dashed"),
        (f"+91 9{digits(4)} {digits(5)}", "India 5-5"),
        (f"+86 138 {digits(4)} {digits(4)}", "China mobile"),
        (f"+55 11 9{digits(4)}-{digits(4)}", "Brazil"),
        (f"+61 2 {digits(4)} {digits(4)}", "Australia"),
        (f"+7 495 {digits(3)}-{digits(2)}-{digits(2)}", "Russia"),
        (f"+353 1 {digits(3)} {digits(4)}", "Ireland"),
        (f"+34 6{digits(2)} {digits(3)} {digits(3)}", "Spain mobile"),
        (f"+31.20.{digits(3)}.{digits(4)}", "Netherlands dotted"),
    ])


PHONE_TEMPLATES = [
    "Call me back at {v} after 5pm",
    "phone={v} verified=true",
    "SMS delivered to {v}",
    "Contact: Jane Doe, {v}",
    '{{"mobile": "{v}", "opt_in": false}}',
    "[{t}] WARN otp: too many attempts from {v}",
    "Tel.: {v} (office)",
    "caller id {v} matched no account",
    "Emergency contact {v} - mother",
    "driver reachable on {v}; ETA 10 min",
]

for _ in range(44):
    v, note = phone()
    add(pick(PHONE_TEMPLATES).format(v=v, t=ts()), "phone", v, f"phone: {note}")

# National numbers written with spaces only: real phone numbers, and the
# shape a scrubber without context finds hardest.
for v, note in [(f"{area()} {rng.randint(2, 9)}{digits(2)} {digits(4)}", "US national, spaces only"),
                (f"020 {digits(4)} {digits(4)}", "UK national, spaces only")]:
    add(f"Customer callback number: {v}", "phone", v, f"phone: {note}")


# ---------------------------------------------------------------------------
# payment cards (Luhn-valid, real issuer prefixes)
# ---------------------------------------------------------------------------

def luhn_digit(partial: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(partial)):
        d = int(ch)
        if i % 2 == 0:  # these get doubled once the check digit is appended
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return str((10 - total % 10) % 10)


def card_number(prefix: str, length: int) -> str:
    body = prefix + digits(length - len(prefix) - 1)
    return body + luhn_digit(body)


def group(number: str, sizes: list[int], sep: str) -> str:
    out, i = [], 0
    for s in sizes:
        out.append(number[i:i + s])
        i += s
    return sep.join(out)


def card() -> tuple[str, str]:
    brand, prefix, length, sizes = pick([
        ("Visa", "4", 16, [4, 4, 4, 4]),
        ("Visa", "4", 16, [4, 4, 4, 4]),
        ("Mastercard", str(rng.randint(51, 55)), 16, [4, 4, 4, 4]),
        ("Mastercard 2-series", str(rng.randint(2221, 2720)), 16, [4, 4, 4, 4]),
        ("Amex", pick(["34", "37"]), 15, [4, 6, 5]),
        ("Discover", pick(["6011", "65", str(rng.randint(644, 649))]), 16, [4, 4, 4, 4]),
        ("Diners", pick(["300", "305", "36", "38"]), 14, [4, 6, 4]),
        ("JCB", str(rng.randint(3528, 3589)), 16, [4, 4, 4, 4]),
    ])
    number = card_number(prefix, length)
    sep, sep_note = pick([(" ", "spaces"), ("-", "dashes"), ("", "no separators")])
    return group(number, sizes, sep), f"{brand}, {sep_note}"


CARD_TEMPLATES = [
    "Payment failed for card {v}",
    "cc_number={v}&amount=42.00",
    "Customer read out card {v} over chat",
    '{{"pan": "{v}", "exp": "08/27"}}',
    "[{t}] ERROR gateway: declined {v} (insufficient funds)",
    "refund issued to {v}.",
    "Card on file: {v}",
    "note: pls charge {v} again, thx",
    "chat: my card is {v} {mm}/{yy}",
    "Card: {v} {mm}/{yy} {cvv}",
]

for _ in range(44):
    v, note = card()
    text = pick(CARD_TEMPLATES).format(v=v, t=ts(), mm=f"{rng.randint(1, 12):02d}", yy=rng.randint(25, 31),
                                       cvv=digits(3))
    add(text, "card", v, f"card: {note}{', expiry after it' if '/' in text else ''}")


# ---------------------------------------------------------------------------
# US social security numbers (valid ranges: area not 000, 666 or 9xx)
# ---------------------------------------------------------------------------

def ssn_parts() -> tuple[str, str, str]:
    while True:
        a = rng.randint(1, 899)
        if a != 666:
            break
    return f"{a:03d}", f"{rng.randint(1, 99):02d}", f"{rng.randint(1, 9999):04d}"


SSN_TEMPLATES = [
    "SSN: {v}",
    "applicant ssn={v} dob=1984-06-02",
    "Verified identity with social security number {v}.",
    '{{"tax_id": "{v}", "form": "W-9"}}',
    "[{t}] AUDIT kyc: matched {v} to record",
    "her SSN is {v}, please update",
    "W-2 employee {v}",
    "ssn_last_full={v}|status=pending",
]

for _ in range(40):
    v = "-".join(ssn_parts())
    add(pick(SSN_TEMPLATES).format(v=v, t=ts()), "ssn", v, "ssn: dashed")
# Written with spaces: still an SSN.
for _ in range(2):
    v = " ".join(ssn_parts())
    add(f"SSN {v} on the scanned form", "ssn", v, "ssn: spaced")


# ---------------------------------------------------------------------------
# IPv4
# ---------------------------------------------------------------------------

def ipv4() -> tuple[str, str]:
    return pick([
        (f"203.0.113.{rng.randint(1, 254)}", "TEST-NET-3"),
        (f"198.51.100.{rng.randint(1, 254)}", "TEST-NET-2"),
        (f"{rng.randint(11, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}", "public"),
        (f"192.168.{rng.randint(0, 255)}.{rng.randint(1, 254)}", "private 192.168"),
        (f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}", "private 10/8"),
        (f"172.{rng.randint(16, 31)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}", "private 172.16/12"),
    ])


IPV4_TEMPLATES = [
    ("client {v} connected", ""),
    ("X-Forwarded-For: {v}", "header"),
    ("login from {v}:52144 rejected", "with port"),
    ("{v} - - [10/Oct/2024:13:55:36 +0000] \"GET /index.html HTTP/1.1\" 200 2326", "access log"),
    ('{{"remote_addr": "{v}", "status": 403}}', "json"),
    ("sshd: Failed password for root from {v} port 22 ssh2", "sshd"),
    ("peer=[{v}] tls=1.3", "bracketed"),
    ("Geo lookup for {v} returned Berlin.", "end of sentence"),
    ("ip={v},ua=curl/8.4.0", "comma after"),
    ("[{t}] INFO rate-limit: {v} exceeded 100 req/min", "log line"),
]

for _ in range(42):
    v, note = ipv4()
    template, tnote = pick(IPV4_TEMPLATES)
    add(template.format(v=v, t=ts()), "ipv4", v, f"ipv4: {note}{', ' + tnote if tnote else ''}")


# ---------------------------------------------------------------------------
# IPv6
# ---------------------------------------------------------------------------

def h4() -> str:
    return f"{rng.randint(1, 0xffff):x}"


def ipv6() -> tuple[str, str]:
    return pick([
        (f"2001:db8:{h4()}::{h4()}", "compressed"),
        (f"2001:db8::{h4()}", "compressed short"),
        (f"2001:0db8:{hexs(4)}:{hexs(4)}:{hexs(4)}:{hexs(4)}:{hexs(4)}:{hexs(4)}", "full, zero-padded"),
        (f"2a00:{h4()}:{h4()}:{h4()}:{h4()}:{h4()}:{h4()}:{h4()}", "full"),
        (f"fe80::{h4()}:{h4()}:{h4()}:{h4()}", "link-local"),
        (f"2001:DB8:{h4().upper()}::{h4().upper()}", "uppercase"),
        (f"::ffff:192.0.2.{rng.randint(1, 254)}", "IPv4-mapped"),
        (f"64:ff9b::{rng.randint(11, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
         "NAT64 with embedded IPv4"),
        (f"2606:4700:{h4()}::{h4()}:{h4()}", "compressed middle"),
    ])


IPV6_TEMPLATES = [
    ("client {v} connected", ""),
    ("GET https://[{v}]:8443/health", "URL with port"),
    ("X-Real-IP: {v}", "header"),
    ('{{"ip": "{v}", "asn": 64500}}', "json"),
    ("sshd: Accepted publickey for deploy from {v} port 50022", "sshd"),
    ("neighbor {v} reachable.", "end of sentence"),
    ("[{t}] WARN waf: blocked {v} (rule 942100)", "log line"),
    ("src={v} dst_port=443 proto=tcp", "key=value"),
]

for _ in range(42):
    v, note = ipv6()
    template, tnote = pick(IPV6_TEMPLATES)
    add(template.format(v=v, t=ts()), "ipv6", v, f"ipv6: {note}{', ' + tnote if tnote else ''}")
zone = f"fe80::{h4()}:{h4()}"
add(f"ping {zone}%eth0 ok", "ipv6", f"{zone}%eth0", "ipv6: link-local with zone id (part of the address)")


# ---------------------------------------------------------------------------
# near-misses: look like PII, are not
# ---------------------------------------------------------------------------

def near(text: str, note: str) -> None:
    add(text, None, None, note)


def luhn_bad(prefix: str, length: int) -> str:
    good = card_number(prefix, length)
    return good[:-1] + str((int(good[-1]) + rng.randint(1, 9)) % 10)


for _ in range(12):
    n = luhn_bad(pick(["4", "51", "37", "6011", "35"]), pick([16, 16, 15]))
    sep = pick(["", " ", "-"])
    shown = group(n, [4, 4, 4, 4] if len(n) == 16 else [4, 6, 5], sep)
    near(pick(["order ref {v}", "tracking {v}", "invoice no. {v}", "batch {v} processed"]).format(v=shown),
         "16/15-digit number failing Luhn")
for _ in range(4):
    near(f"account id {rng.choice('123789')}{digits(15)} created", "16-digit id with no card issuer prefix")
near("card ending 4242 was charged", "last four only")
near(f"card 4111 **** **** {digits(4)} charged", "masked card")
near(f"pan=XXXXXXXXXXXX{digits(4)}", "masked card")
for _ in range(6):
    near(f"Order #{digits(rng.randint(6, 10))} shipped", "order number")
near(f"order ORD-2024-{digits(6)} paid", "order number")
near(f"PO {digits(3)}-{digits(7)} approved", "purchase order 3-7")
for _ in range(8):
    near(ts().join(["[", f"] INFO worker: job {rng.randint(1, 999)} done"]), "ISO timestamp in a log line")
near(f"date=2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}", "ISO date")
near("starts 2024-03-15 10:30:00+01:00 ends 2024-03-15 11:45:00+01:00", "dates and times with offsets")
near("window 09:00-17:30 Mon-Fri", "time range")
near("uptime 12:30:45", "time of day h:m:s")
near("elapsed 00:01:23.456", "duration h:m:s.ms")
near("Sun, 06 Nov 1994 08:49:37 GMT", "HTTP date")
for _ in range(4):
    near(f"epoch={rng.randint(1_600_000_000, 1_800_000_000)}", "epoch seconds")
    near(f"ts_ms={rng.randint(1_600_000_000_000, 1_800_000_000_000)}", "epoch milliseconds")
near(f"ts_ns={rng.randint(1_600_000_000_000_000_000, 1_800_000_000_000_000_000)}", "epoch nanoseconds")
VERSIONS = ["1.2.3", "10.0.0.1.5", "v1.2.3.4", "4.0.30319.42000", "10.0.19045.3803", "2.31.0", "3.11.9",
            "1.2.3-rc.1+build.5"]
for v in VERSIONS:
    near(f"running version {v}", "version string")
near("requires >=1.2.3,<2.0.0", "semver range")
near('"lodash": "^4.17.21", "react": "~18.2.0"', "semver ranges")
near("kernel 5.15.0-91-generic", "kernel version")
near('[assembly: AssemblyVersion("1.0.0.0")]', "four-part version: shaped exactly like an IPv4 address")
near("User-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120.0.6099.109", "user agent")
near("SNMP OID 1.3.6.1.4.1.2021.10.1", "OID")
for _ in range(6):
    u = f"{hexs(8)}-{hexs(4)}-4{hexs(3)}-{pick('89ab')}{hexs(3)}-{hexs(12)}"
    near(pick(["request_id={v}", "trace {v} sampled", '{{"session": "{v}"}}']).format(v=u), "UUID")
near("id 12345678-1234-4234-8234-123456789012", "all-digit UUID")
for _ in range(4):
    near(f"commit {hexs(40)}", "git sha")
near(f"sha256:{hexs(64)}", "sha256 digest")
near(f"md5 {hexs(32)}", "md5")
near(f"nginx@sha256:{hexs(64)}", "image digest with @")
for _ in range(5):
    near(f"SKU {pick(['ABC', 'XJ', 'TSH'])}-{digits(3)}-{digits(4)} restocked", "SKU")
near("part no. 123-456-78", "part number 3-3-2")
near(f"ticket JIRA-{digits(5)} closed", "ticket id")
near("total $1,299.99 (tax $104.00)", "prices")
near("price EUR 1.234.567,89", "European price with dots")
near("balance: 12,345,678.90 USD", "amount with thousands separators")
near("CPU 99.95% mem 12.5%", "percentages")
near("conversion up +12.5% week over week", "signed percentage")
near("lat=37.774929, lon=-122.419416", "coordinates")
near("geo: 48.8566 N, 2.3522 E", "coordinates")
near("moved to 51.5074,-0.1278", "coordinates pair")
near("contact user@ for details", "@ without domain")
near("ping a@b when ready", "a@b without TLD")
near("root@localhost: backup done", "user@host without TLD")
near("thanks @maria for the review", "mention handle")
near("decorated with @app.route('/users')", "python decorator")
near("npm install @babel/core@7.23.0", "scoped package with version")
near("email: <redacted>", "already redacted")
near("subnet 10.0.1 reserved", "3-octet number")
near("blocks 192.168.1 and 192.168.2", "3-octet prefixes")
near("bad address 256.300.1.1 rejected by parser", "octets out of range")
near("matrix 999.12.45.7 unknown", "first octet out of range")
for a in ["000", "666", "900", "987"]:
    near(f"test SSN {a}-{rng.randint(10, 49):02d}-{digits(4)} rejected", f"invalid SSN area {a}")
near(f"SSN 123-00-{digits(4)} invalid group", "invalid SSN group 00")
near("SSN 123-45-0000 invalid serial", "invalid SSN serial 0000")
near("form W-2 2023-12-31", "form and date")
near(f"zip 94103-{digits(4)}", "ZIP+4")
for v in ["1048576 bytes", "1,048,576 bytes", "3.2 GiB", "512MiB", "disk 1 099 511 627 776 B"]:
    near(f"size {v}", "byte size")
for v in ["1234ms", "2h30m", "PT1H30M", "1.5s", "took 86400000 ms"]:
    near(f"duration {v}", "duration")
for v in ["/api/v1/users/12345/orders/67890", "/v2/tenants/42/events?limit=100&cursor=abc",
          "/static/img/icon@2x.png"]:
    near(f"GET {v} 200", "HTTP path")
for _ in range(3):
    mac = ":".join(f"{rng.randint(0, 255):02x}" for _ in range(6))
    near(f"device mac {mac} joined", "MAC address, colons")
near(f"hw {'-'.join(f'{rng.randint(0, 255):02X}' for _ in range(6))}", "MAC address, dashes")
near("ratio 16:9 at 1920x1080", "aspect ratio and resolution")
near("std::vector<int> resize failed", "C++ scope operator")
near("Foo::Bar::baz called", "Ruby constant path")
near("listening on :8080", "port only")
near("chmod 0755 /usr/local/bin/app", "file mode")
near("ISBN 978-3-16-148410-0", "ISBN")
near("phone model SM-G991B", "device model")
near("build 20240315.7 deployed", "build number")
near("retry 3 of 5 after 250 ms", "counters")
near("queue depth 1500000 messages", "big count")
near("page 3 of 12, items 25-36", "ranges")
near("seed=4242424242", "10-digit seed")
near("trace_id=4bf92f3577b34da6a3ce929d0e0e4736 span_id=00f067aa0ba902b7", "trace ids")
near("+1 to this idea, +2 from me", "+1 votes")
near("score went from 1200 to 1450 (+250)", "score delta")
near("sensor reading 415.5550100 V", "decimal reading")
near("model rev 2.0.1; fw 7.4.12", "firmware versions")
near("range 0x7fff0000-0x7fffffff", "hex address range")
near("colour #ff5733", "hex colour")
near("IBAN check skipped for test fixture", "the word only")
near("see RFC 5952 section 4.2.3", "RFC section")
near("rows 1-100000 of 2500000", "row range")
near("temperature -40.5 to +85.0 C", "temperature range")
near("allocated 000-00-0000 placeholder", "all-zero SSN placeholder")


if __name__ == "__main__":
    with OUT.open("w") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    kinds: dict = {}
    for row in rows:
        kinds[row["kind"]] = kinds.get(row["kind"], 0) + 1
    print(f"wrote {len(rows)} examples to {OUT}: {kinds}")

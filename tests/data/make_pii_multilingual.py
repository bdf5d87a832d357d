"""Write tests/data/pii_multilingual.jsonl: labelled PII in realistic text across 11 locales, and hard negatives.

Deterministic (fixed seeds, Faker pinned in pyproject.toml's test extras):
run it again and the file is the same.

    .venv/bin/python tests/data/make_pii_multilingual.py

Each line is ``{"text", "kind", "span", "locale", "carrier", "note"}``:

- a positive: ``kind`` is email, phone, card, ssn, ipv4, ipv6, iban or mac
  and ``span`` is the exact text of the value in ``text`` (once), as written
  there: percent-encoded in a URL, in full-width digits in Japanese text;
- a hard negative: ``kind`` and ``span`` are null; text that looks like PII
  to a pattern (versions, section numbers, OIDs, signed counters, EAN-13
  barcodes, IMEIs, order numbers, dates, amounts, ids, `icon@2x.png`, ...).

Values come from Faker for each locale (en_US, en_GB, de_DE, fr_FR, es_ES,
it_IT, pt_BR, nl_NL, en_IN, ja_JP, zh_CN), written in the carriers text is
stored in: support tickets, chat, mail headers and signatures, JSON and
key=value logs, URLs, CSV rows and access logs, in the locale's language.
Faker's phone numbers are random digits in the locale's formats; a number
whose length no number of that country has (libphonenumber's "possible"
check) is dropped, as no one's phone. Hand-written cases (locale "hand") add
the shapes the generators do not make, from issue 19's list.
"""

from __future__ import annotations

import json
import random
import urllib.parse
from pathlib import Path

import phonenumbers
from faker import Faker

SEED = 20260319
OUT = Path(__file__).with_name("pii_multilingual.jsonl")
LOCALES = {"en_US": "US", "en_GB": "GB", "de_DE": "DE", "fr_FR": "FR", "es_ES": "ES", "it_IT": "IT",
           "pt_BR": "BR", "nl_NL": "NL", "en_IN": "IN", "ja_JP": "JP", "zh_CN": "CN"}
PER_KIND = 30  # values of each kind per locale

rng = random.Random(SEED)
rows: list[dict] = []

# Per language: how a ticket, a chat line and a signature say "my phone / mail / card / address is".
PHRASES = {
    "en": {"phone": ["Please call me back on {v} after 5pm.", "You can reach me at {v}.", "Mobile: {v}"],
           "email": ["Please reply to {v} instead.", "My new address is {v}, thanks!", "Contact: {v}"],
           "card": ["I was charged twice on my card {v}.", "Card number: {v}", "refund to card {v} please"],
           "ip": ["Login attempt from {v} blocked.", "My IP is {v}, can you whitelist it?", "peer {v} reset"],
           "ssn": ["My SSN is {v}.", "SSN: {v}", "social security number {v}"],
           "iban": ["Please refund to IBAN {v}.", "IBAN: {v}"], "mac": ["Device MAC {v} keeps dropping."]},
    "de": {"phone": ["Bitte rufen Sie mich unter {v} zurück.", "Tel.: {v}", "Erreichbar unter {v} ab 18 Uhr."],
           "email": ["Bitte an {v} antworten.", "Meine neue Adresse lautet {v}.", "E-Mail: {v}"],
           "card": ["Meine Karte {v} wurde doppelt belastet.", "Kartennummer: {v}"],
           "ip": ["Anmeldung von {v} blockiert.", "Meine IP ist {v}."],
           "iban": ["Bitte auf IBAN {v} erstatten.", "IBAN: {v}"], "mac": ["MAC-Adresse {v} verliert die Verbindung."]},
    "fr": {"phone": ["Merci de me rappeler au {v}.", "Tél. : {v}", "Vous pouvez me joindre au {v} le soir."],
           "email": ["Merci de répondre à {v}.", "Ma nouvelle adresse est {v}.", "Courriel : {v}"],
           "card": ["Ma carte {v} a été débitée deux fois.", "Numéro de carte : {v}"],
           "ip": ["Connexion depuis {v} bloquée.", "Mon IP est {v}."],
           "iban": ["Remboursement sur l'IBAN {v} svp.", "IBAN : {v}"], "mac": ["Adresse MAC {v} instable."]},
    "es": {"phone": ["Por favor, llámeme al {v}.", "Teléfono: {v}", "Mi móvil es {v}."],
           "email": ["Por favor, responda a {v}.", "Mi nuevo correo es {v}.", "Correo: {v}"],
           "card": ["Me cobraron dos veces en la tarjeta {v}.", "Tarjeta: {v}"],
           "ip": ["Intento de acceso desde {v} bloqueado.", "Mi IP es {v}."],
           "iban": ["Devuélvanlo al IBAN {v}.", "IBAN: {v}"], "mac": ["La MAC {v} se desconecta."]},
    "it": {"phone": ["Mi richiami al {v}, grazie.", "Tel. {v}", "Il mio cellulare è {v}."],
           "email": ["Rispondete a {v}, per favore.", "Il mio nuovo indirizzo è {v}.", "Email: {v}"],
           "card": ["La carta {v} è stata addebitata due volte.", "Numero carta: {v}"],
           "ip": ["Accesso da {v} bloccato.", "Il mio IP è {v}."],
           "iban": ["Rimborso sull'IBAN {v}.", "IBAN: {v}"], "mac": ["Il MAC {v} perde la rete."]},
    "pt": {"phone": ["Por favor, me ligue no {v}.", "Telefone: {v}", "Meu celular é {v}."],
           "email": ["Responda para {v}, por favor.", "Meu novo e-mail é {v}.", "E-mail: {v}"],
           "card": ["Fui cobrado duas vezes no cartão {v}.", "Cartão: {v}"],
           "ip": ["Tentativa de login de {v} bloqueada.", "Meu IP é {v}."],
           "iban": ["Reembolso no IBAN {v}.", "IBAN: {v}"], "mac": ["O MAC {v} cai toda hora."]},
    "nl": {"phone": ["Bel me terug op {v} alstublieft.", "Tel.: {v}", "Mijn mobiel is {v}."],
           "email": ["Graag antwoorden naar {v}.", "Mijn nieuwe adres is {v}.", "E-mail: {v}"],
           "card": ["Mijn kaart {v} is twee keer belast.", "Kaartnummer: {v}"],
           "ip": ["Inlogpoging vanaf {v} geblokkeerd.", "Mijn IP is {v}."],
           "iban": ["Graag terugstorten op IBAN {v}.", "IBAN: {v}"], "mac": ["MAC-adres {v} valt steeds weg."]},
    # Japanese and Chinese write values right against the text, without spaces.
    "ja": {"phone": ["お電話は{v}までお願いします。", "携帯：{v}", "{v}に折り返しお願いします"],
           "email": ["返信は{v}までお願いします。", "メール：{v}", "新しいアドレスは{v}です"],
           "card": ["カード{v}で二重に請求されました。", "カード番号：{v}"],
           "ip": ["{v}からのログインをブロックしました", "IPアドレスは{v}です"],
           "iban": ["IBAN：{v}"], "mac": ["MACアドレス{v}が切断されます"]},
    "zh": {"phone": ["请拨打{v}联系我。", "手机：{v}", "我的电话是{v}，谢谢"],
           "email": ["请回复到{v}。", "邮箱：{v}", "我的新邮箱是{v}谢谢"],
           "card": ["我的卡{v}被重复扣款。", "卡号：{v}"],
           "ip": ["来自{v}的登录已被阻止", "我的IP是{v}"],
           "iban": ["IBAN：{v}"], "mac": ["MAC地址{v}经常断线"]},
}
KEYS = {"phone": ["phone", "tel", "mobile", "contact_phone"], "email": ["email", "reply_to", "user", "contact"],
        "card": ["card_number", "pan", "cc"], "ip": ["client_ip", "remote_addr", "ip", "src"],
        "ssn": ["ssn", "social_security"], "iban": ["iban"], "mac": ["mac", "hw_addr"]}
FULL_WIDTH = str.maketrans("0123456789+-", "０１２３４５６７８９＋－")


def add(text: str, kind: str | None, span: str | None, locale: str, carrier: str, note: str = "") -> None:
    if span is not None:
        assert text.count(span) == 1, (text, span)
    rows.append({"text": text, "kind": kind, "span": span, "locale": locale, "carrier": carrier, "note": note})


def carry(kind: str, value: str, locale: str, fake: Faker, note: str = "") -> None:
    """`value` written in one of the carriers, chosen at random."""
    family = "ip" if kind in ("ipv4", "ipv6") else kind
    lang = locale[:2]
    carrier = rng.choice(["ticket", "chat", "mail", "json", "kv", "url", "csv", "access"])
    name = fake.name()
    span = value
    if carrier in ("ticket", "chat", "mail"):
        phrase = rng.choice(PHRASES[lang].get(family) or PHRASES["en"][family])
        body = phrase.format(v=value)
        if carrier == "ticket":
            text = f"Ticket #{rng.randint(10000, 99999)}: {body}"
        elif carrier == "chat":
            text = f"[{rng.randint(10, 23)}:{rng.randint(10, 59)}] {name}: {body}"
        elif kind == "email" and rng.random() < 0.5:
            text = f"From: {name} <{value}>"
        else:
            text = f"{body}\n--\n{name}\n{fake.company()}"
    elif carrier == "json":
        key = rng.choice(KEYS[family])
        text = json.dumps({"level": "info", "msg": "profile updated", key: value, "user_id": rng.randint(1, 99999),
                           "took_ms": rng.randint(1, 900)}, ensure_ascii=False)
        span = json.dumps(value, ensure_ascii=False)[1:-1]
    elif carrier == "kv":
        key = rng.choice(KEYS[family])
        quoted = f'"{value}"' if " " in value else value
        text = f'ts=2024-03-15T10:{rng.randint(10, 59)}:00Z level=warn msg="contact changed" {key}={quoted} dur=12ms'
    elif carrier == "url":
        key = rng.choice(KEYS[family])
        span = urllib.parse.quote(value, safe="") if rng.random() < 0.7 else urllib.parse.quote(value, safe="@+")
        text = f"GET /api/v2/contacts?{key}={span}&lang={lang} HTTP/1.1"
    elif carrier == "csv":
        key = rng.choice(KEYS[family])
        text = f"id,name,{key},city\n{rng.randint(1000, 9999)},{name},{value},{fake.city()}"
    else:  # access log: the value where an access log has it
        if family == "ip":
            text = f'{value} - - [15/Mar/2024:10:22:31 +0000] "GET /index.html HTTP/1.1" 200 5120 "-" "curl/8.5.0"'
        else:
            span = urllib.parse.quote(value, safe="")
            key = rng.choice(KEYS[family])
            text = f'- - - [15/Mar/2024:10:22:31 +0000] "GET /u?{key}={span} HTTP/1.1" 200 512'

    add(text, kind, span, locale, carrier, note)


# -- values per kind ------------------------------------------------------------------


def phones(fake: Faker, region: str) -> list[tuple[str, str]]:
    out = []
    while len(out) < PER_KIND:
        raw = fake.phone_number()
        try:
            number = phonenumbers.parse(raw, region)
        except phonenumbers.NumberParseException:
            continue
        if not phonenumbers.is_possible_number(number):
            continue
        number.extension = None  # ours are added below, one at most
        roll = rng.random()
        if roll < 0.55:
            out.append((raw, "faker"))
        elif roll < 0.7:
            out.append((phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL), "intl"))
        elif roll < 0.8:
            intl = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
            out.append(("00" + intl[1:], "00 prefix"))
        elif roll < 0.88:
            out.append((phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), "e164"))
        elif roll < 0.94:
            national = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
            out.append((national + rng.choice([" ext. ", " x", "x", " ext "]) + str(rng.randint(10, 9999)), "ext"))
        else:
            out.append((phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL), "national"))
    return out


def luhn_complete(prefix: str, length: int) -> str:
    body = prefix + "".join(rng.choice("0123456789") for _ in range(length - len(prefix) - 1))
    for check in "0123456789":
        digits = body + check
        total = 0
        for i, ch in enumerate(reversed(digits)):
            d = int(ch) * (2 if i % 2 else 1)
            total += d - 9 if d > 9 else d
        if total % 10 == 0:
            return digits
    raise AssertionError


def group(number: str) -> str:
    roll = rng.random()
    if roll < 0.4:
        return number
    sep = " " if roll < 0.75 else "-"
    if len(number) == 15 and number[:2] in ("34", "37"):
        return sep.join([number[:4], number[4:10], number[10:]])
    if len(number) == 14:
        return sep.join([number[:4], number[4:10], number[10:]])
    return sep.join(number[i:i + 4] for i in range(0, len(number), 4))


def cards(seed: int) -> list[tuple[str, str]]:
    # Card networks do not depend on the locale, and some locales' providers know fewer types.
    fake = Faker("en_US")
    fake.seed_instance(seed)
    out = []
    # Not Faker's "jcb16": it draws from all of 35xx, where JCB issues only 3528-3589.
    faker_types = ["visa16", "visa16", "visa19", "mastercard", "mastercard", "amex", "discover", "diners", "jcb15"]
    own = [("62", 16, "unionpay"), ("62", 19, "unionpay"), ("2200", 16, "mir"), ("6759", 16, "maestro"),
           ("5018", 19, "maestro"), ("6011", 16, "discover"), ("2720", 16, "mastercard 2-series"),
           ("508", 16, "rupay"), ("9792", 16, "troy"), ("3528", 16, "jcb16"), ("3589", 16, "jcb16")]
    while len(out) < PER_KIND:
        if rng.random() < 0.65:
            t = rng.choice(faker_types)
            out.append((group(fake.credit_card_number(card_type=t)), t))
        else:
            prefix, length, name = rng.choice(own)
            out.append((group(luhn_complete(prefix, length)), name))
    return out


def emails(fake: Faker, locale: str) -> list[tuple[str, str]]:
    out = []
    unicode_domains = {"de": "bücher-müller.de", "fr": "société-générale.fr", "es": "añadir.es", "ja": "例え.jp",
                       "zh": "例子.中国", "pt": "coração.com.br", "it": "città.it", "nl": "ëxample.nl",
                       "en": "exämple.com"}
    while len(out) < PER_KIND:
        roll = rng.random()
        if roll < 0.55:
            out.append((rng.choice([fake.email(), fake.free_email(), fake.company_email()]), "faker"))
        elif roll < 0.7:
            first = fake.first_name().lower().replace(" ", "")
            out.append((f"{first}.{fake.last_name().lower().replace(' ', '')}@{fake.free_email_domain()}",
                        "name in the local part (accents, kana, Han)"))
        elif roll < 0.8:
            out.append((f"{fake.user_name()}@{unicode_domains[locale[:2]]}", "Unicode domain"))
        elif roll < 0.87:
            domain = rng.choice(["xn--80ak6aa92e.com", "beispiel.xn--p1ai", "example.xn--fiqs8s"])
            out.append((f"{fake.user_name()}@{domain}", "punycode"))
        elif roll < 0.93:
            out.append((f"{fake.user_name()}+{rng.choice(['billing', 'news', 'x1'])}@{fake.free_email_domain()}",
                        "plus tag"))
        else:
            out.append((f"{rng.choice(['o', 'd', 'l'])}'{fake.last_name().lower().replace(' ', '')}@example.com",
                        "apostrophe"))
    return out


def ips(fake: Faker) -> list[tuple[str, str, str]]:
    out = []
    while len(out) < PER_KIND:
        roll = rng.random()
        if roll < 0.5:
            out.append(("ipv4", fake.ipv4_public(), "faker"))
        elif roll < 0.8:
            out.append(("ipv6", fake.ipv6(), "faker"))
        elif roll < 0.88:
            out.append(("ipv6", f"fe80::{rng.randint(1, 0xffff):x}:{rng.randint(1, 0xffff):x}%eth{rng.randint(0, 3)}",
                        "zone id"))
        elif roll < 0.94:
            out.append(("ipv6", f"::ffff:{fake.ipv4_public()}", "mapped v4"))
        else:
            out.append(("ipv6", f"2001:db8::{rng.randint(1, 0xffff):x}", "compressed"))
    return out


def generate_locale(locale: str, region: str) -> None:
    fake = Faker(locale)
    fake.seed_instance(SEED + sum(map(ord, locale)))
    for value, note in phones(fake, region):
        if locale in ("ja_JP", "zh_CN") and rng.random() < 0.2:
            value, note = value.translate(FULL_WIDTH), note + ", full-width digits"
        carry("phone", value, locale, fake, note)
    for value, note in emails(fake, locale):
        carry("email", value, locale, fake, note)
    for value, note in cards(SEED + sum(map(ord, locale))):
        carry("card", value, locale, fake, note)
    for kind, value, note in ips(fake):
        carry(kind, value, locale, fake, note)
    ibans_elsewhere = Faker(rng.choice(["de_DE", "fr_FR", "nl_NL", "en_GB"]))
    ibans_elsewhere.seed_instance(SEED)
    for _ in range(PER_KIND // 3):
        # India, Japan and China use no IBANs (and Faker's fallback there writes GB ones a digit short).
        iban = fake.iban() if locale not in ("en_IN", "ja_JP", "zh_CN") else ibans_elsewhere.iban()
        if rng.random() < 0.5:
            iban = " ".join(iban[i:i + 4] for i in range(0, len(iban), 4))
        carry("iban", iban, locale, fake, "iban")
        mac = fake.mac_address()
        carry("mac", mac.upper().replace(":", "-") if rng.random() < 0.3 else mac, locale, fake, "mac")
    if locale == "en_US":
        for _ in range(PER_KIND * 2):
            ssn = fake.ssn()
            roll = rng.random()
            value = ssn if roll < 0.5 else ssn.replace("-", " ") if roll < 0.75 else ssn.replace("-", "")
            carry("ssn", value, locale, fake, "ssn")


# -- hand-written hard cases ----------------------------------------------------------

HAND_POSITIVES = [
    ("phone", "Please call +81 80-8876-7066に折り返し", "+81 80-8876-7066"),
    ("phone", "電話番号は+81 80-8876-7066にお願いします", "+81 80-8876-7066"),
    ("phone", "电话+86 138 0013 8000谢谢", "+86 138 0013 8000"),
    ("phone", "携帯０９０－１２３４－５６７８まで", "０９０－１２３４－５６７８"),
    ("phone", "call 0049 30 1234567 now", "0049 30 1234567"),
    ("phone", "tel 0044 20 7946 0958", "0044 20 7946 0958"),
    ("phone", "office 206.269.0743x9150", "206.269.0743x9150"),
    ("phone", "Phone: +1 415-555-0100 ext. 920 (desk)", "+1 415-555-0100 ext. 920"),
    ("phone", "GET /call?to=%2B14155550100&from=web", "%2B14155550100"),
    ("phone", "redirect?tel=%2B49%2030%201234567", "%2B49%2030%201234567"),
    ("phone", "Tel. 030/1234567", "030/1234567"),
    ("phone", "Handy 015112345678", "015112345678"),
    ("phone", "手机13800138000", "13800138000"),
    ("phone", "mobile=07911123456", "07911123456"),
    ("phone", "e164=+14155550100", "+14155550100"),
    ("phone", "Tél : 06 12 34 56 78", "06 12 34 56 78"),
    ("phone", "(415) 555-0100 is my cell", "(415) 555-0100"),
    ("phone", "+44 (0)20 7946 0958 is the office", "+44 (0)20 7946 0958"),
    ("email", "Reply to o'kerr@x.com please", "o'kerr@x.com"),
    ("email", "mail jane%40example.com", "jane%40example.com"),
    ("email", "/unsubscribe?email=jane.doe%40gmail.com&t=1", "jane.doe%40gmail.com"),
    ("email", "メールはjane@example.comです", "jane@example.com"),
    ("email", "联系wang.fang@example.cn谢谢", "wang.fang@example.cn"),
    ("email", 'From: "john smith"@example.com', '"john smith"@example.com'),
    ("email", "to: müller@bücher.de", "müller@bücher.de"),
    ("email", "邮箱：用户@例子.广告", "用户@例子.广告"),
    ("email", "contact: ivan@пример.рф", "ivan@пример.рф"),
    ("email", "x: user@beispiel.xn--p1ai", "user@beispiel.xn--p1ai"),
    ("card", "maestro 6759 6498 2643 8453", "6759 6498 2643 8453"),
    ("card", "unionpay 6212345678901265", "6212345678901265"),
    ("card", "JCB 213100000000001", "213100000000001"),
    ("card", "card 4111 1111 1111 1111 08/27 cvc 123", "4111 1111 1111 1111"),
    ("card", "カード4111111111111111で支払い", "4111111111111111"),
    ("ssn", "SSN 078 05 1120 on file", "078 05 1120"),
    ("ssn", "social security number: 078051120", "078051120"),
    ("ssn", "ssn=078-05-1120", "078-05-1120"),
    ("ipv6", "link fe80::1ff:fe23:4567:890a%eth0 up", "fe80::1ff:fe23:4567:890a%eth0"),
    ("ipv6", "peer ::ffff:192.0.2.128 up", "::ffff:192.0.2.128"),
    ("ipv6", "来自::ffff:192.0.2.128的连接", "::ffff:192.0.2.128"),
    ("ipv6", "http://[fe80::1%25en0]:8080/", "fe80::1%25en0"),
    ("ipv4", "IPアドレス203.0.113.42からのアクセス", "203.0.113.42"),
    ("ipv4", "dns 8.8.8.8", "8.8.8.8"),
]

HAND_NEGATIVES = [
    "icon name@2x.png", "<img src=\"logo@3x.webp\">", "git clone git@github.com:acme/flywheel.git",
    "git@gitlab.example.com:group/repo", "npm i @scope/pkg@1.2.3", "delta=+285980307", "+898180032 bytes",
    "offset=+36000000", "§8.4.1.1", "see § 4.2.1.3", "OID 1.3.6.1.4.1.311.21.7", "oid=2.5.4.3",
    "version 1.2.0.4", "v1.0.0.1", "MyApp/2.3.1.0 (Linux)", "IMEI 356938035643809", "imei: 490154203237518",
    "EAN 4006381333931", "barcode 5901234123457", "Order 403-1234567-1234567 shipped", "order #402-7725168-6631503",
    "ts=1700000000", "id 078051120", "ISBN 978-3-16-148410-0", "at 2024-03-15 10:22:31", "2024年3月15日 10:22",
    "amount 1.234.567,89 €", "$1,234,567.00 total", "resolution 1920x1080", "duration 00:12:34.567",
    "coords 48.137154, 11.576124", "ZIP 94103-1234", "build 10.0.19045.3693", "Chrome/120.0.6099.109",
    "sha 3f2a9c1e8b7d4f6a0c5e2b1d9f8a7c6e5d4b3a21", "uuid 8c6f3e8a-3b9d-4f0e-9a51-2d7c1b0e6f44",
]


def hand() -> None:
    for kind, text, span in HAND_POSITIVES:
        add(text, kind, span, "hand", "hand", "hand-written")
    for text in HAND_NEGATIVES:
        add(text, None, None, "hand", "hand", "hand-written")


# -- hard negatives -------------------------------------------------------------------


def ean13() -> str:
    body = rng.choice(["400", "401", "590", "500", "300", "450", "690", "880", "789", "840"]) + "".join(
        rng.choice("0123456789") for _ in range(9))
    total = sum((3 if i % 2 else 1) * int(ch) for i, ch in enumerate(body))
    return body + str((10 - total % 10) % 10)


def imei() -> str:
    return luhn_complete(rng.choice(["35", "86", "01", "99", "353", "356", "490"]), 15)


def negatives(fake: Faker, n: int) -> None:
    makers = [
        lambda: f"version {rng.randint(0, 9)}.{rng.randint(0, 9)}.{rng.randint(0, 9)}.{rng.randint(0, 9)}",
        lambda: f"v{rng.randint(1, 9)}.{rng.randint(0, 20)}.{rng.randint(0, 99)}",
        lambda: f"upgraded to {rng.randint(1, 4)}.{rng.randint(0, 9)}.{rng.randint(0, 9)}.{rng.randint(0, 9)}",
        lambda: f"§{rng.randint(1, 20)}.{rng.randint(1, 9)}.{rng.randint(1, 9)}.{rng.randint(1, 9)}",
        lambda: f"see section {rng.randint(1, 20)}.{rng.randint(1, 9)}.{rng.randint(1, 9)}.{rng.randint(1, 9)}",
        lambda: f"OID {rng.choice(['1.3.6.1.4.1', '2.5.4', '1.2.840.113549.1.1', '2.16.840.1.101.3.4.2'])}"
                f".{rng.randint(1, 99)}",
        lambda: f"delta=+{rng.randint(10**6, 10**10)}",
        lambda: f"+{rng.randint(10**6, 10**10)} bytes",
        lambda: f"gain: +{rng.randint(10**6, 10**9)} points",
        lambda: f"EAN {ean13()}",
        lambda: f"barcode={ean13()}",
        lambda: json.dumps({"sku": rng.randint(1000, 9999), "ean": ean13()}),
        lambda: f"IMEI: {imei()}",
        lambda: json.dumps({"device": "pixel", "imei": imei()}),
        lambda: f"imei={imei()} registered",
        lambda: f"Order {rng.choice(['402', '403', '404', '405', '406', '407', '408'])}-{rng.randint(10**6, 10**7 - 1)}"
                f"-{rng.randint(10**6, 10**7 - 1)} shipped",
        lambda: f"order_id={rng.randint(10**9, 10**10 - 1)}",
        lambda: json.dumps({"user_id": rng.randint(10**9, 10**11), "ts": rng.randint(1_600_000_000, 1_800_000_000)}),
        lambda: f"ts={rng.randint(1_600_000_000_000, 1_800_000_000_000)}",
        lambda: fake.date_time().isoformat() + "Z",
        lambda: fake.date(pattern=rng.choice(["%d.%m.%Y", "%Y/%m/%d", "%d/%m/%Y %H:%M", "%Y%m%d%H%M%S"])),
        lambda: f"amount {rng.randint(1, 999)}.{rng.randint(100, 999)}.{rng.randint(100, 999)},{rng.randint(10, 99)} €",
        lambda: f"total ${rng.randint(1, 999)},{rng.randint(100, 999)},{rng.randint(100, 999)}.00",
        lambda: f"{rng.randint(1, 999)} {rng.randint(100, 999)} {rng.randint(100, 999)} habitants",
        lambda: f"{fake.user_name()}@{rng.randint(2, 3)}x.png",
        lambda: f"git@github.com:{fake.user_name()}/{fake.word()}.git",
        lambda: f"uuid={fake.uuid4()}",
        lambda: f"sha256:{fake.sha256()}",
        lambda: f"commit {fake.sha1()}",
        lambda: f"resolution {rng.choice([1280, 1920, 2560])}x{rng.choice([720, 1080, 1440])}",
        lambda: f"took {rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}"
                f".{rng.randint(0, 999)}",
        lambda: f"coords {fake.latitude()}, {fake.longitude()}",
        lambda: f"ISBN 978-{rng.randint(0, 9)}-{rng.randint(10, 99)}-{rng.randint(100000, 999999)}-{rng.randint(0, 9)}",
        lambda: f"Chrome/{rng.randint(100, 130)}.0.{rng.randint(1000, 9999)}.{rng.randint(10, 300)}",
        lambda: f"build {rng.randint(10, 11)}.0.{rng.randint(10000, 30000)}.{rng.randint(100, 9999)}",
        lambda: f"capacity_bytes={rng.randint(10**11, 10**13)}",
        lambda: f"serial: {rng.randint(1000, 9999)}-{rng.randint(1000, 9999)}-{rng.randint(1000, 9999)}",
        lambda: f"ZIP {rng.randint(10000, 99999)}-{rng.randint(1000, 9999)}",
        lambda: f"Ticket #{rng.randint(10**5, 10**8)} updated",
        lambda: f"case 2024-{rng.randint(100000, 999999)}",
        lambda: f"port {rng.randint(1024, 65535)} open on 0.0.0.0",
        lambda: f"range {rng.randint(100, 999)}-{rng.randint(1000, 9999)}",
        lambda: f"ratio {rng.randint(1, 99)}/{rng.randint(100, 999)}",
        lambda: f"tracking 1Z{rng.randint(100, 999)}AA1{rng.randint(10**7, 10**8 - 1)}",
        lambda: f"elapsed_ms={rng.randint(10**6, 10**9)}",
        lambda: f"pid={rng.randint(1000, 99999)} uid={rng.randint(1000, 65000)}",
        lambda: f"{rng.randint(2020, 2026)}年{rng.randint(1, 12)}月{rng.randint(1, 28)}日に発送しました",
        lambda: f"订单号{rng.randint(10**15, 10**16)}已发货",
        lambda: f"注文番号{rng.randint(10**11, 10**12)}",
        lambda: f"price ¥{rng.randint(1, 99)},{rng.randint(100, 999)},{rng.randint(100, 999)}",
        lambda: f"time 12:{rng.randint(10, 59)}:{rng.randint(10, 59)}",
        lambda: f"k8s cpu={rng.randint(100, 900)}m mem={rng.randint(128, 4096)}Mi",
        lambda: f"@{fake.user_name()} thanks!",
        lambda: "user@localhost denied",
        lambda: f"hex #{rng.randint(0, 0xffffff):06x}",
    ]
    for i in range(n):
        text = makers[i % len(makers)]()
        carrier = rng.choice(["log", "json", "chat"])
        if carrier == "json":
            text = json.dumps({"level": "info", "msg": text})
        elif carrier == "chat":
            text = f"{fake.first_name()}: {text}"
        add(text, None, None, "neg", carrier, "hard negative")


def main() -> None:
    for locale, region in LOCALES.items():
        generate_locale(locale, region)
    hand()
    fake = Faker("en_US")
    fake.seed_instance(SEED)
    negatives(fake, 1200)
    with OUT.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"{len(rows)} rows -> {OUT}")


if __name__ == "__main__":
    main()

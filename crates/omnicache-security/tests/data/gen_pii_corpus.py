#!/usr/bin/env python3
"""Writes pii_corpus.jsonl: labeled text for the PII detector's precision and recall test.

Each line is {"id", "text", "labels": [{"kind", "start", "end"}]} with byte offsets into the
UTF-8 text. Positives are made valid by rules independent of the detector: Luhn and issuer
ranges for cards, ISO 13616 check digits for IBANs, the SSA's rules for SSNs, and Google's
libphonenumber (its Python port, `phonenumbers`) for phone numbers in eight countries, written
in each country's own formats. Hard negatives are what a careless detector reports: order and
tracking numbers, timestamps, dates, version strings, UUIDs, hashes, ISBNs, numbers in prose,
checksums that fail.

    python3 -m venv /tmp/v && /tmp/v/bin/pip install faker phonenumbers
    /tmp/v/bin/python gen_pii_corpus.py > pii_corpus.jsonl

The seed is fixed, so the file is reproducible.
"""

import base64
import json
import random
import string
import sys
import uuid

import phonenumbers
from faker import Faker
from phonenumbers import PhoneNumberFormat as F

R = random.Random(20261206)
LOCALES = ["en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "pt_BR", "ru_RU", "he_IL"]
FAKERS = {loc: Faker(loc) for loc in LOCALES}
for i, f in enumerate(FAKERS.values()):
    f.seed_instance(1000 + i)


def digits(n, first=None):
    s = "".join(R.choice(string.digits) for _ in range(n))
    return (first + s[1:]) if first else s


def luhn_digit(body):
    total = 0
    for i, d in enumerate(reversed(body)):
        v = int(d)
        if i % 2 == 0:
            v *= 2
            if v > 9:
                v -= 9
        total += v
    return str((10 - total % 10) % 10)


def luhn_ok(num):
    return luhn_digit(num[:-1]) == num[-1]


CARD_PREFIXES = [("4", 16), ("4", 13), ("51", 16), ("55", 16), ("2221", 16), ("2720", 16), ("34", 15),
                 ("37", 15), ("6011", 16), ("65", 16), ("3528", 16), ("36", 14), ("62", 16), ("2200", 16)]


def card():
    prefix, length = R.choice(CARD_PREFIXES)
    body = prefix + digits(length - len(prefix) - 1)
    num = body + luhn_digit(body)
    style = R.random()
    if length == 15 and style < 0.6:
        return f"{num[:4]} {num[4:10]} {num[10:]}"
    if style < 0.45:
        return " ".join(num[i:i + 4] for i in range(0, length, 4))
    if style < 0.7:
        return "-".join(num[i:i + 4] for i in range(0, length, 4))
    return num


IBAN_SPECS = {  # country: BBAN made of (kind, count): n digits, a upper letters, c alphanumerics
    "DE": [("n", 18)], "GB": [("a", 4), ("n", 14)], "FR": [("n", 10), ("c", 11), ("n", 2)],
    "ES": [("n", 20)], "IT": [("a", 1), ("n", 10), ("c", 12)], "NL": [("a", 4), ("n", 10)],
    "BE": [("n", 12)], "CH": [("n", 5), ("c", 12)], "AT": [("n", 16)], "PL": [("n", 24)],
    "PT": [("n", 21)], "SE": [("n", 20)], "IL": [("n", 19)], "BR": [("n", 23), ("a", 1), ("c", 1)],
    "NO": [("n", 11)], "IE": [("a", 4), ("n", 14)], "DK": [("n", 14)], "FI": [("n", 14)],
}


def bban(spec):
    out = ""
    for kind, count in spec:
        pool = string.digits if kind == "n" else string.ascii_uppercase if kind == "a" else string.ascii_uppercase + string.digits
        out += "".join(R.choice(pool) for _ in range(count))
    return out


def iban_check(country, b):
    s = b + country + "00"
    n = int("".join(str(int(c, 36)) for c in s))
    return f"{98 - n % 97:02d}"


def iban(valid=True):
    country = R.choice(list(IBAN_SPECS))
    b = bban(IBAN_SPECS[country])
    check = iban_check(country, b)
    if not valid:
        good = check
        while check == good:
            check = f"{R.randint(2, 98):02d}"
    compact = country + check + b
    if R.random() < 0.6:
        return " ".join(compact[i:i + 4] for i in range(0, len(compact), 4))
    return compact


def ssn_valid_digits():
    while True:
        area = R.randint(1, 899)
        if area == 666:
            continue
        return f"{area:03d}", f"{R.randint(1, 99):02d}", f"{R.randint(1, 9999):04d}"


PHONE_REGIONS = ["US", "GB", "DE", "FR", "ES", "BR", "IL", "RU"]


def valid_phone(region):
    kind = R.choice([phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE])
    example = phonenumbers.example_number_for_type(region, kind) or phonenumbers.example_number(region)
    national = str(example.national_number)
    for _ in range(200):
        keep = R.randint(2, 4)
        cand = national[:keep] + digits(len(national) - keep)
        num = phonenumbers.parse("+" + str(example.country_code) + cand)
        if phonenumbers.is_valid_number(num) and phonenumbers.region_code_for_number(num) == region:
            return num
    return example


def phone_text(region):
    num = valid_phone(region)
    nat = phonenumbers.format_number(num, F.NATIONAL)
    intl = phonenumbers.format_number(num, F.INTERNATIONAL)
    e164 = phonenumbers.format_number(num, F.E164)
    options = [nat, nat, intl, intl, e164]
    if region == "US":
        d = str(num.national_number)
        options += [f"{d[:3]}-{d[3:6]}-{d[6:]}", f"{d[:3]}.{d[3:6]}.{d[6:]}", f"+1-{d[:3]}-{d[3:6]}-{d[6:]}",
                    f"1-{d[:3]}-{d[3:6]}-{d[6:]}", f"+1 ({d[:3]}) {d[3:6]}-{d[6:]}"]
    if region == "FR":
        options.append(nat.replace(" ", "."))
    if region in ("DE", "IL", "ES"):
        options.append(intl.replace(" ", "-"))
    if region == "GB":
        options.append(intl.replace("+44 ", "+44 (0)"))
    if region == "DE":
        parts = nat.split(" ", 1)
        if len(parts) == 2:
            options.append(parts[0] + "/" + parts[1].replace(" ", ""))
    return R.choice(options)


def jwt():
    b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
    header = b64(json.dumps({"alg": R.choice(["HS256", "RS256", "ES256"]), "typ": "JWT"}).encode())
    payload = b64(json.dumps({"sub": str(R.randint(1, 10**9)), "name": FAKERS["en_US"].name(), "iat": R.randint(1.5e9, 1.8e9)}).encode())
    sig = b64(bytes(R.getrandbits(8) for _ in range(32)))
    return f"{header}.{payload}.{sig}"


def rand_str(pool, n):
    return "".join(R.choice(pool) for _ in range(n))


ALNUM = string.ascii_letters + string.digits


def secret():
    k = R.randrange(8)
    if k == 0:
        return "AKIA" + rand_str(string.ascii_uppercase + "234567", 16)
    if k == 1:
        return "ghp_" + rand_str(ALNUM, 36)
    if k == 2:
        return "xoxb-" + "-".join(digits(12) for _ in range(2)) + "-" + rand_str(ALNUM, 24)
    if k == 3:
        return "sk_live_" + rand_str(ALNUM, 24)
    if k == 4:
        return "AIza" + rand_str(ALNUM + "_-", 35)
    if k == 5:
        return "glpat-" + rand_str(ALNUM, 20)
    if k == 6:
        body = "\n".join(rand_str(ALNUM + "+/", 64) for _ in range(R.randint(3, 8)))
        label = R.choice(["RSA PRIVATE KEY", "PRIVATE KEY", "EC PRIVATE KEY", "OPENSSH PRIVATE KEY"])
        return f"-----BEGIN {label}-----\n{body}\n-----END {label}-----"
    return "npm_" + rand_str(ALNUM, 36)


def ipv4():
    return ".".join(str(R.choice([R.randint(1, 255), R.randint(1, 99)])) for _ in range(4))


def ipv6():
    groups = [f"{R.randint(0, 0xffff):x}" for _ in range(8)]
    style = R.random()
    if style < 0.4:
        return ":".join(groups)
    if style < 0.8:
        return ":".join(groups[:3]) + "::" + ":".join(groups[6:])
    return "fe80::" + ":".join(groups[5:])


class Record:
    def __init__(self):
        self.parts = []
        self.labels = []
        self.length = 0

    def add(self, text, kind=None):
        b = text.encode()
        if kind:
            self.labels.append({"kind": kind, "start": self.length, "end": self.length + len(b)})
        self.parts.append(text)
        self.length += len(b)
        return self

    def text(self):
        return "".join(self.parts)


def prose(loc):
    return FAKERS[loc].sentence(nb_words=R.randint(4, 12))


POSITIVE_TEMPLATES = {
    "email": [("Contact {name} at ", ". "), ("E-Mail: ", ""), ("Écrivez à ", " pour plus d'informations."),
              ("Correo: <", ">"), ("Пишите на ", ", отвечаем быстро."), ("mailto:", ""), ("reply-to: ", "\n")],
    "phone": [("Call me on ", " after 6pm."), ("Tel.: ", ""), ("Telefon ", " (Büro)"), ("Téléphone : ", "."),
              ("Teléfono: ", " o escríbenos."), ("Ligue para ", " hoje."), ("Звоните: ", "."), ("טלפון: ", ""),
              ("You can reach {name} at ", "."), ("", " is my number"), ("phone=", "&ok=1"), ("Fax ", "")],
    "credit_card": [("Card number: ", ""), ("Paid with VISA ", " exp 12/27."), ("cc=", ";"),
                    ("Tarjeta ", " caduca pronto."), ("Номер карты ", "."), ("The customer entered ", " at checkout.")],
    "iban": [("IBAN: ", ""), ("Please transfer to ", " by Friday."), ("Kontonummer (IBAN) ", "."),
             ("RIB / IBAN ", " – merci."), ("Transferir a ", ".")],
    "us_ssn": [("SSN: ", ""), ("Social Security Number ", " on file."), ("ssn=", "&"), ("Employee {name}, SSN ", ".")],
    "ip_address": [("Login from ", " failed."), ("client_ip=", " "), ("Server at ", " is down."),
                   ("Connexion depuis ", "."), ("Blocked ", " after 5 attempts.")],
    "jwt": [("Authorization: Bearer ", ""), ("token=", "&next=/"), ("Your session token is ", ".")],
    "secret": [("aws_access_key_id = ", "\n"), ("export TOKEN=", "\n"), ("key: ", ""), ("Found credential ", " in the repo."),
               ("", "")],
}

def faker_phone(loc):
    """Faker's own phone formats (extensions, "+44(0)"), kept when libphonenumber calls the
    digits a possible number of the locale's country."""
    region = loc.split("_")[1]
    for _ in range(50):
        p = FAKERS[loc].phone_number()
        try:
            if phonenumbers.is_possible_number(phonenumbers.parse(p, region)):
                return p
        except phonenumbers.NumberParseException:
            pass
    return phone_text(region)


def faker_or(own, provider, share=0.3):
    return lambda loc: getattr(FAKERS["en_US"], provider)() if R.random() < share else own(loc)


MAKERS = {
    "email": lambda loc: FAKERS[loc].email() if R.random() < 0.7 else f"{FAKERS['en_US'].first_name().lower()}.{FAKERS['en_US'].last_name().lower()}+{R.randint(1, 99)}@{FAKERS['en_US'].domain_name()}",
    "phone": lambda loc: faker_phone(loc) if R.random() < 0.3 else phone_text(R.choice(PHONE_REGIONS)),
    "credit_card": faker_or(lambda loc: card(), "credit_card_number"),
    "iban": faker_or(lambda loc: iban(), "iban"),
    "us_ssn": faker_or(lambda loc: "-".join(ssn_valid_digits()), "ssn"),
    "ip_address": lambda loc: R.choice([ipv4, ipv6, FAKERS["en_US"].ipv4, FAKERS["en_US"].ipv6])(),
    "jwt": lambda loc: jwt(),
    "secret": lambda loc: secret(),
}


def positive(kind):
    loc = R.choice(LOCALES)
    before, after = R.choice(POSITIVE_TEMPLATES[kind])
    name = FAKERS[loc].name()
    r = Record()
    if R.random() < 0.5:
        r.add(prose(loc) + " ")
    r.add(before.replace("{name}", name))
    r.add(MAKERS[kind](loc), kind)
    r.add(after)
    if R.random() < 0.5:
        r.add(" " + prose(loc))
    return r


def uuid4():
    return str(uuid.UUID(int=R.getrandbits(128), version=4))


def bad_luhn_16():
    while True:
        n = digits(16, first=R.choice("123456789"))
        if not luhn_ok(n):
            return n


NEGATIVES = [
    lambda: f"Order #{bad_luhn_16()} has shipped.",
    lambda: f"Order number {bad_luhn_16()[:4]} {bad_luhn_16()[4:8]} {bad_luhn_16()[8:12]} {bad_luhn_16()[12:]}",
    lambda: f"Invoice INV-{R.randint(2019, 2026)}-{R.randint(1, 999999):06d} is due.",
    lambda: f"ORD-{R.randint(100000, 9999999)}",
    lambda: f"created_at={R.randint(1_500_000_000_000, 1_800_000_000_000)}",
    lambda: f"timestamp: {R.randint(1_500_000_000, 1_800_000_000)}",
    lambda: f"Last login {R.randint(2019, 2026)}-{R.randint(1, 12):02d}-{R.randint(1, 28):02d}T{R.randint(0, 23):02d}:{R.randint(0, 59):02d}:{R.randint(0, 59):02d}Z",
    lambda: f"Datum: {R.randint(1, 28):02d}.{R.randint(1, 12):02d}.{R.randint(1990, 2030)}",
    lambda: f"Due {R.randint(1, 12):02d}/{R.randint(1, 28):02d}/{R.randint(1990, 2030)}, paid {R.randint(2019, 2026)}-{R.randint(1, 12):02d}-{R.randint(1, 28):02d}.",
    lambda: f"Upgraded to version {R.randint(1, 20)}.{R.randint(0, 30)}.{R.randint(0, 99)}.{R.randint(0, 9999)}",
    lambda: f"Requires v{R.randint(0, 9)}.{R.randint(0, 30)}.{R.randint(0, 99)} or later.",
    lambda: f"request_id={uuid4()}",
    lambda: f"Trace {uuid4().upper()} completed",
    lambda: f"Tracking number 1Z{rand_str(string.ascii_uppercase + string.digits, 16)}",
    lambda: f"USPS tracking: 9400 {digits(4)} {digits(4)} {digits(4)} {digits(4)} {digits(2)}",
    lambda: f"FedEx {digits(4)} {digits(4)} {digits(4)}",
    lambda: f"commit {rand_str('0123456789abcdef', 40)}",
    lambda: f"sha256:{rand_str('0123456789abcdef', 64)}",
    lambda: f"md5 {rand_str('0123456789abcdef', 32)}",
    lambda: f"ISBN 978-{R.randint(0, 9)}-{R.randint(10, 99)}-{R.randint(100000, 999999)}-{R.randint(0, 9)}",
    lambda: f"The city has a population of {R.randint(1, 9)},{R.randint(100, 999)},{R.randint(100, 999)} people.",
    lambda: f"Die Stadt hat {R.randint(100, 999)} {R.randint(100, 999)} Einwohner und {R.randint(10, 99)} Schulen.",
    lambda: f"Total: ${R.randint(1, 99)},{R.randint(100, 999)}.{R.randint(10, 99)} for {R.randint(2, 40)} items",
    lambda: f"Resolution {R.choice(['1920x1080', '2560x1440', '3840x2160'])} at {R.randint(30, 240)} Hz",
    lambda: f"Pi is about 3.{digits(10)}",
    lambda: f"IBAN {iban(valid=False)} (typo)",
    lambda: f"SSN 666-{R.randint(10, 99)}-{R.randint(1000, 9999)} is not issued",
    lambda: f"ITIN 9{R.randint(10, 99)}-{R.randint(70, 88)}-{R.randint(1000, 9999)}",
    lambda: f"Reference 000-{R.randint(10, 99)}-{R.randint(1000, 9999)}",
    lambda: f"Build {R.randint(1000, 99999)}.{R.randint(0, 999)}",
    lambda: f"Part no. {digits(3)}-{digits(3)}-{digits(4)}",
    lambda: f"Address 999.{R.randint(256, 999)}.1.1 is not valid",
    lambda: f"Ratio {R.randint(1, 9)}:{R.randint(1, 9)}, at {R.randint(0, 23):02d}:{R.randint(0, 59):02d}:{R.randint(0, 59):02d}",
    lambda: f"MAC {':'.join(rand_str('0123456789ABCDEF', 2) for _ in range(6))}",
    lambda: f"std::vector<int> and Vec::new() in module a::b",
    lambda: f"icon@2x.png and npm install lodash@{R.randint(1, 4)}.{R.randint(0, 20)}.{R.randint(0, 20)}",
    lambda: "@" + FAKERS["en_US"].user_name() + " mentioned you",
    lambda: f"We use sk-learn and {FAKERS['en_US'].word()} for analytics",
    lambda: f"Key AKIA{rand_str(string.ascii_uppercase, 8)} is too short",
    lambda: f"Coordinates {R.uniform(-90, 90):.6f}, {R.uniform(-180, 180):.6f}",
    lambda: f"Luhn-valid but no issuer: {(lambda b: b + luhn_digit(b))('1' + digits(14))}",
    lambda: f"Account {digits(10)} at branch {digits(4)}",
    lambda: f"Call center open {R.randint(7, 9)}-{R.randint(17, 20)}h, {R.randint(1, 5)} agents.",
    lambda: f"{R.randint(1, 28)} {R.randint(1, 12)} {R.randint(1990, 2030)} — {R.randint(10, 99)} {R.randint(100, 999)} km",
    lambda: f"Order {digits(8)} placed for {R.randint(1, 9)} units",
    lambda: f"eyJhbGciOiJIUzI1NiJ9 is only a header",
]


def negative():
    loc = R.choice(LOCALES)
    r = Record()
    if R.random() < 0.4:
        r.add(prose(loc) + " ")
    r.add(R.choice(NEGATIVES)())
    if R.random() < 0.4:
        r.add(" " + prose(loc))
    return r


def mixed():
    loc = R.choice(LOCALES)
    r = Record()
    for _ in range(R.randint(2, 4)):
        if R.random() < 0.5:
            kind = R.choice(list(MAKERS))
            before, after = R.choice(POSITIVE_TEMPLATES[kind])
            r.add(before.replace("{name}", FAKERS[loc].name()))
            r.add(MAKERS[kind](loc), kind)
            r.add(after + " ")
        else:
            r.add(R.choice(NEGATIVES)() + " ")
        r.add(prose(loc) + " ")
    return r


def main():
    records = []
    for kind in MAKERS:
        records += [positive(kind) for _ in range(220)]
    records += [negative() for _ in range(1800)]
    records += [mixed() for _ in range(700)]
    R.shuffle(records)
    for i, r in enumerate(records):
        print(json.dumps({"id": f"r{i:05d}", "text": r.text(), "labels": r.labels}, ensure_ascii=False))


if __name__ == "__main__":
    sys.exit(main())

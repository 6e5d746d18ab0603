"""Synthetic personal data with valid formats and check digits, for the privacy tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

FIRST = ["Anna", "Ben", "Clara", "David", "Emma", "Felix", "Grace", "Hugo", "Ines", "Jonas",
         "Karin", "Liam", "Maria", "Noah", "Olga", "Paul", "Rosa", "Samuel", "Tara", "Victor"]
LAST = ["Schmidt", "Garcia", "Jansen", "Smith", "Rossi", "Dubois", "Novak", "Berg", "Costa",
        "Murphy", "Keller", "Lopez", "Visser", "Brown", "Moreau", "Horvat", "Lind", "Silva"]


def luhn_complete(body: str) -> str:
    """``body`` with the Luhn check digit appended."""
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return body + str((10 - total % 10) % 10)


def iban(country: str, bban: str) -> str:
    moved = bban + country + "00"
    check = 98 - int("".join(str(int(ch, 36)) for ch in moved)) % 97
    return f"{country}{check:02d}{bban}"


def dni(number: int) -> str:
    return f"{number:08d}" + "TRWAGMYFPDXBNJZSQVHLCKE"[number % 23]


def bsn(rng: np.random.Generator) -> str:
    while True:
        d = rng.integers(0, 10, 8)
        total = sum((9 - i) * int(x) for i, x in enumerate(d))
        last = total % 11
        if last < 10 and d[0] != 0:
            return "".join(map(str, d)) + str(last)


def pii_frame(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """People with every kind of direct identifier, plus ordinary columns."""
    rng = np.random.default_rng(seed)
    birth = np.datetime64("1940-01-01") + rng.integers(0, 365 * 60, n).astype("timedelta64[D]")
    names = [f"{rng.choice(FIRST)} {chr(65 + rng.integers(0, 26))}. {rng.choice(LAST)}"
             for _ in range(n)]
    return pd.DataFrame({
        "customer": names,
        "born": birth.astype(str),
        "contact": [f"{a.lower()}.{i}@example.org" for i, a in enumerate(rng.choice(FIRST, n))],
        "tel": [f"+44 20 7946 {rng.integers(0, 10000):04d}" for _ in range(n)],
        "tax_ref": [f"{rng.integers(1, 666):03d}-{rng.integers(1, 100):02d}-"
                    f"{rng.integers(1, 10000):04d}" for _ in range(n)],
        "ni": [f"AB{rng.integers(0, 10**6):06d}{'ABCD'[rng.integers(0, 4)]}" for _ in range(n)],
        "es_id": [dni(int(x)) for x in rng.integers(10**6, 10**8, n)],
        "nl_id": [bsn(rng) for _ in range(n)],
        "account": [iban("DE", f"{rng.integers(10**17, 10**18)}") for _ in range(n)],
        "card": [luhn_complete("4" + "".join(map(str, rng.integers(0, 10, 14))))
                 for _ in range(n)],
        # ordinary columns
        "amount": rng.integers(100, 100_000, n),
        "grade": rng.choice(["A", "B", "C"], n),
        "city": rng.choice(["New York", "San Francisco", "Los Angeles", "Santa Fe"], n),
        "product": [f"P-{x:05d}" for x in rng.integers(0, 99999, n)],
        "ratio": rng.random(n),
    })


#: The kind each column of :func:`pii_frame` must be found to hold.
KINDS = {"customer": "person name", "born": "date of birth", "contact": "e-mail address",
         "tel": "phone number", "tax_ref": "US social security number",
         "ni": "UK national insurance number", "es_id": "Spanish DNI/NIE",
         "nl_id": "Dutch BSN", "account": "IBAN", "card": "payment card number"}

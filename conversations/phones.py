"""Phone numbers in E.164, with Brazil's 9th mobile digit made canonical.

Brazilian mobiles gained a leading 9 (2012–2016), but WhatsApp accounts created earlier still
report their ``wa_id`` without it (``55 11 8765-4321``). Both spellings must land on one
customer, so the canonical form always carries the 9: ``+5511987654321``. Landlines (local part
starting with 2–5) keep eight digits.
"""

from __future__ import annotations

import re

_NON_DIGITS = re.compile(r"\D+")


def normalize_phone(raw: str | None, *, national: bool = False) -> str | None:
    """Return ``+<digits>`` in canonical form, or None when ``raw`` is not a plausible number.

    ``raw`` is international (Meta's ``wa_id``: country code first) unless ``national`` is set:
    then a number typed by a person or imported from an ERP without ``+``/``00`` and with 10 or
    11 digits (DDD + local number, after an optional trunk ``0``: "011 98765-4321") is taken
    as Brazilian.
    """
    if not raw:
        return None
    text = str(raw).strip()
    digits = _NON_DIGITS.sub("", text)
    if digits.startswith("00"):
        digits = digits[2:]
    elif national and not text.startswith("+") and len(digits.lstrip("0")) in (10, 11):
        digits = "55" + digits.lstrip("0")
    if len(digits) < 8 or len(digits) > 15:
        return None
    if digits.startswith("55"):
        digits = _canonical_brazil(digits)
        if digits is None:
            return None
    return "+" + digits


def _canonical_brazil(digits: str) -> str | None:
    national = digits[2:]
    if len(national) not in (10, 11):
        return None
    ddd, local = national[:2], national[2:]
    if ddd[0] == "0":
        return None
    if len(local) == 8 and local[0] in "6789":
        local = "9" + local  # an old-format mobile: add the 9th digit
    return "55" + ddd + local


# Area codes (DDD) in use in Brazil (Anatel's numbering plan).
# fmt: off
BRAZILIAN_AREA_CODES = frozenset({
    "11", "12", "13", "14", "15", "16", "17", "18", "19",
    "21", "22", "24", "27", "28",
    "31", "32", "33", "34", "35", "37", "38",
    "41", "42", "43", "44", "45", "46", "47", "48", "49",
    "51", "53", "54", "55",
    "61", "62", "63", "64", "65", "66", "67", "68", "69",
    "71", "73", "74", "75", "77", "79",
    "81", "82", "83", "84", "85", "86", "87", "88", "89",
    "91", "92", "93", "94", "95", "96", "97", "98", "99",
})
# fmt: on


def brazilian_phone_problem(e164: str) -> str | None:
    """Why a canonical ``+55…`` number (``normalize_phone``'s output) cannot be a Brazilian
    phone, or None when it can: ``"area_code"`` (no such DDD), ``"mobile"`` (nine digits must
    start with 9), ``"landline"`` (eight digits must start with 2 to 5), ``"length"``.

    ``normalize_phone`` only checks plausibility (it must accept whatever Meta sends); callers
    that take numbers from people or files (the customer-base import) check this too.
    """
    digits = e164.removeprefix("+")
    if not digits.startswith("55") or len(digits) not in (12, 13):
        return "length"
    ddd, local = digits[2:4], digits[4:]
    if ddd not in BRAZILIAN_AREA_CODES:
        return "area_code"
    if len(local) == 9:
        return None if local[0] == "9" else "mobile"
    return None if local[0] in "2345" else "landline"

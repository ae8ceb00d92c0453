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
    11 digits (DDD + local number) is taken as Brazilian.
    """
    if not raw:
        return None
    text = str(raw).strip()
    digits = _NON_DIGITS.sub("", text)
    if digits.startswith("00"):
        digits = digits[2:]
    elif national and not text.startswith("+") and len(digits) in (10, 11):
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

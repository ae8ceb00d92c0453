"""The one way to find customers by who they are: wa_id, BSUID, phone, CPF, or a name word.

Those fields are encrypted at rest (randomised: the database cannot compare them), so every
look-up normalises its input exactly as the stored value was normalised, takes the keyed blind
index of it, and compares indexes (``Customer.*_bidx``). Nothing is ever decrypted to search.
Every caller — webhook processing, the console and API search, the admin, compliance, the bot,
commands and tests — goes through here; no other module filters on those columns.

- ``customer_identity_q(…)``: a ``Q`` for ``Customer`` (or, with ``prefix="customer__"``, for
  a model that points at it); each argument is a value or a list of values (``__in``), and the
  given arguments must all match.
- ``customers_by_identity(…)``: the same as a ``Customer`` queryset.
- ``customer_name_q(text, …)``: customers whose name has every word of ``text`` (whole words;
  accents and case ignored).
- ``identity_index(kind, value)``: the index value itself, for callers that map rows back to
  inputs in bulk (``{c.phone_bidx: c for c in …}``).

Writing customers needs nothing from here: the index columns derive themselves from the
plaintext on ``create``/``save``/``bulk_create`` and ``Customer.objects.update``/
``bulk_update`` (``ispsupport.crypto``). Uniqueness lives on ``wa_id_bidx``, ``bsuid_bidx`` and
``phone_bidx``: those are the ``unique_fields`` of an upsert, and the columns an
``IntegrityError`` is about.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Literal

from django.db.models import Q, QuerySet

from conversations.models import Customer
from conversations.phones import normalize_phone

Kind = Literal["wa_id", "bsuid", "phone", "cpf"]
Values = str | Iterable[str] | None

_INDEX_COLUMN: dict[str, str] = {
    "wa_id": "wa_id_bidx",
    "bsuid": "bsuid_bidx",
    "phone": "phone_bidx",
    "cpf": "cpf_bidx",
}
_NON_DIGITS = re.compile(r"\D+")


def _normalise(kind: Kind, value: str, *, national: bool) -> str | None:
    """The stored form of ``value`` (see ``Customer``), or None when it cannot be one."""
    text = (value or "").strip()
    if not text:
        return None
    if kind == "phone":
        return normalize_phone(text, national=national)
    if kind == "cpf":
        digits = _NON_DIGITS.sub("", text)
        return digits if len(digits) == 11 else None
    return text  # wa_id and BSUID are Meta's opaque strings, matched exactly


def identity_index(kind: Kind, value: str, *, national: bool = False) -> str | None:
    """The blind index a customer with this identifier has in ``<kind>_bidx``; None when the
    value cannot be a valid one (then nothing can match).

    ``national=True`` reads a phone typed by a person (DDD + number without ``+55``).
    """
    normalised = _normalise(kind, value, national=national)
    if normalised is None:
        return None
    return Customer._meta.get_field(_INDEX_COLUMN[kind]).compute(normalised)


def _criterion(kind: Kind, values: Values, *, national: bool, prefix: str) -> Q:
    column = f"{prefix}{_INDEX_COLUMN[kind]}"
    if isinstance(values, str):
        index = identity_index(kind, values, national=national)
        return Q(**{column: index}) if index else Q(**{f"{column}__in": []})
    indexes = {identity_index(kind, v, national=national) for v in values}
    indexes.discard(None)
    return Q(**{f"{column}__in": sorted(indexes)})  # an empty list matches nothing


def customer_identity_q(
    *,
    wa_id: Values = None,
    bsuid: Values = None,
    phone: Values = None,
    cpf: Values = None,
    national: bool = False,
    prefix: str = "",
) -> Q:
    """Customers with all the given identifiers (each a value or a list of alternatives).

    An invalid value (a phone that cannot be normalised, a CPF without 11 digits) matches
    nothing; no argument at all matches nothing either (never "everyone").
    """
    criteria = {"wa_id": wa_id, "bsuid": bsuid, "phone": phone, "cpf": cpf}
    given = [(kind, values) for kind, values in criteria.items() if values is not None]
    if not given:
        return Q(**{f"{prefix}phone_bidx__in": []})
    q = Q()
    for kind, values in given:
        q &= _criterion(kind, values, national=national, prefix=prefix)  # type: ignore[arg-type]
    return q


def customers_by_identity(
    *,
    wa_id: Values = None,
    bsuid: Values = None,
    phone: Values = None,
    cpf: Values = None,
    national: bool = False,
) -> QuerySet[Customer]:
    """``Customer.objects`` filtered by :func:`customer_identity_q`."""
    return Customer.objects.filter(
        customer_identity_q(wa_id=wa_id, bsuid=bsuid, phone=phone, cpf=cpf, national=national)
    )


def customer_name_q(text: str, *, prefix: str = "") -> Q | None:
    """Customers whose name holds every word of ``text`` (accents, case and order ignored;
    whole words only: "Sou" does not find "Souza"); None when ``text`` has no word."""
    field = Customer._meta.get_field("name_bidx")
    return field.contains_words_q(text, prefix=prefix)

"""One row of the customer-base import: validated and normalised as it will be stored, or the
list of its problems (line, column, pt-BR reason; never a value of the row).

The rules are the project's own: CPF check digits (``isp.cpf``), phones in E.164 with the 9th
mobile digit (``conversations.phones``), the lengths of ``isp.Contract``'s columns.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from django.utils.translation import gettext as _

from conversations.phones import brazilian_phone_problem, normalize_phone
from isp.cpf import cpf_digits, is_valid_cpf
from isp.imports.csvfile import COLUMNS, STATUS_VALUES, Header, normalise_name
from isp.models import Contract, cpf_index, phone_index

HOLDER_MAX_LENGTH = 200
ADDRESS_MAX_LENGTH = 300
PHONE_SEPARATORS = re.compile(r"[|,;/]")


@dataclass(frozen=True)
class Rejection:
    """One problem of one row: its line in the file (the header is line 1), the column as
    the file names it ("" for the whole line) and why, in pt-BR. Never a value of the row."""

    line: int
    column: str
    reason: str


@dataclass
class Row:
    """A valid row, normalised as it will be stored."""

    line: int
    ref: str
    holder_name: str
    cpf: str
    cpf_index: str
    phones: dict[str, str]  # phone blind index → canonical E.164
    values: dict[str, Any]  # the other fields present in the header


def clean(text: str) -> str:
    return " ".join((text or "").split())


def _parse_int(text: str) -> int | None:
    digits = text.strip()
    return int(digits) if digits.isdigit() and len(digits) <= 9 else None


def parse_brl(text: str) -> Decimal | None:
    """``99,90``, ``99.90``, ``R$ 1.234,56``, ``1,234.56``, ``1234`` → Decimal; None if not money.

    The last ``,`` or ``.`` is the decimal separator when one or two digits follow it; any other
    is a thousands separator.
    """
    value = text.strip().removeprefix("R$").strip().replace(" ", "")
    if not value:
        return None
    if not re.fullmatch(r"\d[\d.,]*", value):
        return None
    integer, decimals = value, ""
    last = max(value.rfind(","), value.rfind("."))
    if last != -1 and 1 <= len(value) - last - 1 <= 2:
        integer, decimals = value[:last], value[last + 1 :]
    integer = integer.replace(".", "").replace(",", "")
    if not integer.isdigit():
        return None
    try:
        amount = Decimal(f"{integer}.{decimals or '0'}").quantize(Decimal("0.01"))
    except InvalidOperation:
        return None
    return amount if amount < Decimal("100000000") else None


_PHONE_PROBLEMS = {
    "area_code": lambda n: _("%(n)dº número: DDD inexistente.") % {"n": n},
    "mobile": lambda n: _("%(n)dº número: celular com 9 dígitos deve começar por 9.") % {"n": n},
    "landline": lambda n: (
        _("%(n)dº número: telefone fixo deve começar por 2, 3, 4 ou 5.") % {"n": n}
    ),
}


def parse_phones(cell: str) -> tuple[dict[str, str], list[str]]:
    """The distinct canonical phones of a cell (several separated by | , ; or /) and the
    problems of the others."""
    phones: dict[str, str] = {}
    problems: list[str] = []
    parts = [p.strip() for p in PHONE_SEPARATORS.split(cell or "") if p.strip()]
    for position, raw in enumerate(parts, start=1):
        e164 = normalize_phone(raw, national=True)
        international = raw.startswith(("+", "00"))
        if e164 is None or (not e164.startswith("+55") and not international):
            problems.append(
                _("%(n)dº número inválido: use DDD + número, como 11 98765-4321.") % {"n": position}
            )
            continue
        problem = brazilian_phone_problem(e164) if e164.startswith("+55") else None
        if problem:
            problems.append(_PHONE_PROBLEMS.get(problem, _PHONE_PROBLEMS["area_code"])(position))
            continue
        phones.setdefault(phone_index(e164), e164)
    return phones, problems


_REQUIRED = frozenset(c.field for c in COLUMNS if c.required)
# Text columns and their length limits (the model's own, where the column has one).
_TEXT_LIMITS: dict[str, int] = {
    "holder_name": HOLDER_MAX_LENGTH,
    "address": ADDRESS_MAX_LENGTH,
    **{
        name: Contract._meta.get_field(name).max_length
        for name in ("ref", "plan_name", "city", "neighbourhood", "pop", "olt", "box")
    },
}


def parse_row(cells: list[str], line: int, header: Header) -> tuple[Row | None, list[Rejection]]:
    problems: list[Rejection] = []

    def reject(field_name: str, reason: str) -> None:
        problems.append(Rejection(line, header.labels.get(field_name, ""), reason))

    if len(cells) > header.width and any(c.strip() for c in cells[header.width :]):
        problems.append(
            Rejection(
                line,
                "",
                _("A linha tem %(n)d campos e o cabeçalho %(m)d: confira o separador e as aspas.")
                % {"n": len(cells), "m": header.width},
            )
        )
        return None, problems

    def cell(field_name: str) -> str | None:
        index = header.positions.get(field_name)
        if index is None:
            return None  # the column is not in the file
        return cells[index] if index < len(cells) else ""

    values: dict[str, Any] = {}
    for column in COLUMNS:
        raw = cell(column.field)
        if raw is None:
            continue
        if column.required and not raw.strip():
            reject(column.field, _("Campo obrigatório vazio."))
            continue
        limit = _TEXT_LIMITS.get(column.field)
        if limit is not None:
            text = clean(raw)
            if len(text) > limit:
                reject(column.field, _("Mais de %(max)d caracteres.") % {"max": limit})
                continue
            values[column.field] = text
        elif column.field == "cpf":
            digits = cpf_digits(raw)
            if len(digits) == 14:
                reject("cpf", _("CNPJ não é aceito: informe o CPF do titular (11 dígitos)."))
            elif len(digits) != 11:
                reject("cpf", _("O CPF tem %(n)d dígitos; são 11.") % {"n": len(digits)})
            elif not is_valid_cpf(digits):
                reject("cpf", _("CPF inválido: os dígitos verificadores não conferem."))
            else:
                values["cpf"] = digits
        elif column.field == "phones":
            phones, phone_problems = parse_phones(raw)
            for problem in phone_problems:
                reject("phones", problem)
            if not phone_problems and not phones:
                reject("phones", _("Campo obrigatório vazio."))
            values["phones"] = phones
        elif column.field == "status":
            status = STATUS_VALUES.get(normalise_name(raw))
            if status is None:
                reject(
                    "status",
                    _("Situação desconhecida (“%(value)s”): use ativo, bloqueado ou cancelado.")
                    % {"value": clean(raw)[:30]},
                )
            else:
                values["status"] = status
        elif column.field in ("download_mbps", "upload_mbps"):
            if not raw.strip():
                values[column.field] = 0
                continue
            number = _parse_int(raw)
            if number is None:
                reject(column.field, _("Use um número inteiro de Mbps, como 300."))
            else:
                values[column.field] = number
        elif column.field == "monthly_price":
            if not raw.strip():
                values[column.field] = Decimal("0.00")
                continue
            amount = parse_brl(raw)
            if amount is None:
                reject(column.field, _("Valor em reais inválido: use, por exemplo, 99,90."))
            else:
                values[column.field] = amount
    if problems or not values.keys() >= _REQUIRED:
        return None, problems
    ref = values.pop("ref")
    holder = values.pop("holder_name")
    cpf = values.pop("cpf")
    phones = values.pop("phones")
    return Row(line, ref, holder, cpf, cpf_index(cpf), phones, values), []

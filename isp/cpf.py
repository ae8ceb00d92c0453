"""The CPF (Cadastro de Pessoas Físicas): check digits, normalisation and masking.

Pure Python, no Django: ``bot.masking`` (which hides CPFs before text leaves the machine) and the
identity check of ``isp.services`` share this one implementation of the check-digit rule.
"""

from __future__ import annotations

import re

__all__ = ["cpf_digits", "find_cpf_candidate", "is_valid_cpf", "mask_cpf"]

_CANDIDATE = re.compile(r"(?<![\d.])\d{3}[.\s]?\d{3}[.\s]?\d{3}[-.\s]?\d{2}(?!\d)")


def cpf_digits(value: str) -> str:
    """Only the digits of ``value`` (punctuation and spaces dropped)."""
    return "".join(ch for ch in value if ch.isdigit())


def is_valid_cpf(value: str) -> bool:
    """True when ``value`` holds exactly 11 digits (punctuation ignored) with valid check digits.

    Sequences of one repeated digit ("111.111.111-11") pass the arithmetic but are never issued,
    so they are rejected.
    """
    digits = cpf_digits(value)
    if len(digits) != 11 or digits == digits[0] * 11:
        return False
    numbers = [int(ch) for ch in digits]
    for position in (9, 10):
        total = sum(
            n * w for n, w in zip(numbers[:position], range(position + 1, 1, -1), strict=True)
        )
        check = (total * 10) % 11 % 10
        if numbers[position] != check:
            return False
    return True


def find_cpf_candidate(text: str) -> str | None:
    """The first CPF-shaped run (11 digits, the usual punctuation) in ``text``, valid or not.

    The identity check needs to tell "that is not a valid CPF" from "you sent no CPF at all",
    so the check digits are *not* verified here. The value must never be logged or sent out.
    """
    match = _CANDIDATE.search(text or "")
    return cpf_digits(match.group()) if match else None


def mask_cpf(digits: str) -> str:
    """``•••.456.•••-09``: enough for the customer to recognise it, never the whole number."""
    digits = cpf_digits(digits)
    return f"•••.{digits[3:6]}.•••-{digits[-2:]}" if len(digits) == 11 else ""

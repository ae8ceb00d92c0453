"""Mask Brazilian personal identifiers in customer text before it leaves our servers.

Pure Python, no Django. :func:`mask_pii` is applied to every message sent to the LLM and to
anything logged for evaluation; it replaces values with typed tokens:

``[BOLETO]`` ``[CHAVE_PIX]`` ``[EMAIL]`` ``[CNPJ]`` ``[CPF]`` ``[TELEFONE]`` ``[CEP]``
``[ENDERECO]`` and, as a last resort for any other long digit run (card, account or protocol
numbers), ``[NUMERO]``.

The masking errs on the side of hiding: an 11-digit run is masked even when its CPF check digits
are wrong, because a mistyped CPF is still the customer's. It does not try to find names.
"""

from __future__ import annotations

import re
from collections.abc import Callable

# One check-digit rule for the whole project; re-exported here for the bot's callers.
from isp.cpf import is_valid_cpf

__all__ = ["contains_pii", "extract_cpf", "is_valid_cpf", "mask_pii"]

# Separators customers type inside long numbers: dots, dashes, spaces, slashes.
_SEP = r"[\s./-]?"

# Boleto digitable lines (47 digits for bank slips, 48 for utilities) and 44-digit bar codes.
# Matched loosely as a long run of digits and separators, then confirmed by counting digits, so
# any grouping the customer pastes is caught; this runs first so that no CPF or phone pattern can
# claim a fragment of it.
_LONG_RUN = re.compile(r"(?<!\d)\d(?:[ .-]{0,2}\d){39,}(?!\d)")
_EVP_KEY = re.compile(
    r"(?<![0-9a-f])[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(?![0-9a-f])",
    re.IGNORECASE,
)
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", re.IGNORECASE)
# CNPJ: 14 digits, and from July 2026 the alphanumeric form (12 letters/digits + 2 check digits);
# the alphanumeric one is only recognised with its punctuation, or words would be masked.
_CNPJ = re.compile(
    r"(?<![\w])(?:\d{2}\.?\d{3}\.?\d{3}/?\d{4}-?\d{2}"
    r"|[A-Z0-9]{2}\.[A-Z0-9]{3}\.[A-Z0-9]{3}/[A-Z0-9]{4}-\d{2})(?![\w])",
    re.IGNORECASE,
)
_CPF_FORMATTED = re.compile(r"(?<![\d.])\d{3}([.\s])\d{3}\1\d{3}[-.\s]?\d{2}(?![\d])")
_ELEVEN_DIGITS = re.compile(r"(?<!\d)\d{11}(?!\d)")
# CEP: always when written 12345-678; as a bare 8-digit run only right after the word "CEP",
# which the replacement keeps.
_CEP = re.compile(
    r"(?<![\d.])\d{2}\.?\d{3}-\d{3}(?!\d)|(?P<label>\bcep\b\W{0,3})\d{8}(?!\d)", re.IGNORECASE
)
# Payment cards typed in four groups of four; matched before phones, which would split them.
_CARD = re.compile(r"(?<!\d)(?:\d{4}([ .-])\d{4}\1\d{4}\1\d{4}|\d{16})(?!\d)")
_ADDRESS = re.compile(
    r"\b(?:rua|r\.|av\.?|avenida|travessa|tv\.|trav\.|alameda|al\.|estrada|estr\.|rodovia|rod\.|"
    r"pra[cç]a|largo|servid[aã]o|beco|viela|quadra|qd\.?)"
    r"\s+[^\n,;!?\d]{2,60}?[,\s]\s*(?:n[º°o.]?\s*)?(?:\d{1,5}[a-z]?\b|s/?n\b)"
    r"(?:\s*[-,]?\s*(?:ap(?:to|artamento)?\.?|casa|bloco|bl\.?|lote|lt\.?|fundos)\s*\d*[a-z]?\b)?",
    re.IGNORECASE,
)
# Brazilian phones: optional +55, optional (0)DDD in or out of parentheses, optional ninth digit,
# then 4 + 4 digits with any of the usual separators.
_PHONE = re.compile(
    r"(?<![\d])(?:\+\s?55|\b55)?[\s.-]?(?:\(\s?0?\d{2}\s?\)|0?\d{2})?[\s.-]?"
    r"(?:9[\s.-]?)?\d{4}[\s.-]?\d{4}(?!\d)"
)
# Whatever long digit run survived the rules above (cards, account numbers, protocols).
# Slashes are left out so that dates ("25/11/2026") survive: they carry meaning for support.
_LEFTOVER_DIGITS = re.compile(r"(?<!\d)\d(?:[\s.-]?\d){7,}(?!\d)")


def _digits(value: str) -> str:
    return "".join(ch for ch in value if ch.isdigit())


def extract_cpf(text: str) -> str | None:
    """Return the first valid CPF in ``text`` as 11 digits, or None.

    Call it on the raw text before :func:`mask_pii` when the CPF is needed locally (billing
    lookup); the value must never be sent to the LLM or logged.
    """
    for match in re.finditer(r"(?<![\d.])\d{3}\.?\d{3}\.?\d{3}[-.\s]?\d{2}(?!\d)", text):
        if is_valid_cpf(match.group()):
            return _digits(match.group())
    return None


def _looks_like_mobile(digits: str) -> bool:
    # DDD 11-99 followed by the mobile ninth digit.
    return digits[0] != "0" and digits[1] != "0" and digits[2] == "9"


def _mask_eleven(match: re.Match[str]) -> str:
    digits = match.group()
    if is_valid_cpf(digits):
        return "[CPF]"
    return "[TELEFONE]" if _looks_like_mobile(digits) else "[CPF]"


def _mask_cep(match: re.Match[str]) -> str:
    return f"{match.group('label') or ''}[CEP]"


def _mask_long_run(match: re.Match[str]) -> str:
    return "[BOLETO]" if len(_digits(match.group())) >= 44 else "[NUMERO]"


_Replacement = str | Callable[[re.Match[str]], str]

# The order matters: longer and more specific shapes first, so that a shorter pattern never
# claims a piece of a longer identifier (a boleto contains many phone-shaped runs).
_STEPS: tuple[tuple[re.Pattern[str], _Replacement], ...] = (
    (_LONG_RUN, _mask_long_run),
    (_CARD, "[NUMERO]"),
    (_EVP_KEY, "[CHAVE_PIX]"),
    (_EMAIL, "[EMAIL]"),
    (_CNPJ, "[CNPJ]"),
    (_CPF_FORMATTED, "[CPF]"),
    (_ELEVEN_DIGITS, _mask_eleven),
    (_CEP, _mask_cep),
    (_ADDRESS, "[ENDERECO]"),
    (_PHONE, "[TELEFONE]"),
    (_LEFTOVER_DIGITS, "[NUMERO]"),
)


def _keep_edges(replacement: _Replacement) -> Callable[[re.Match[str]], str]:
    # Patterns may swallow the spaces around a number; put them back so words do not merge.
    def replace(match: re.Match[str]) -> str:
        text = match.group()
        token = replacement(match) if callable(replacement) else replacement
        leading = text[: len(text) - len(text.lstrip())]
        trailing = text[len(text.rstrip()) :]
        return f"{leading}{token}{trailing}"

    return replace


def mask_pii(text: str) -> str:
    """Return ``text`` with every recognised identifier replaced by its typed token.

    Idempotent (tokens contain no digits), never raises for ``str`` input, and leaves all other
    characters, including emojis and line breaks, untouched.
    """
    for pattern, replacement in _STEPS:
        text = pattern.sub(_keep_edges(replacement), text)
    return text


def contains_pii(text: str) -> bool:
    """True when :func:`mask_pii` would change ``text``."""
    return mask_pii(text) != text

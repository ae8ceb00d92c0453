"""Personal data never reaches a log line: a filter that masks it in every record.

``PIIMaskingFilter`` is installed on the root handler(s) in ``settings.LOGGING``, so it sees
every record any logger propagates. It renders the message with its args, masks it, and
replaces ``msg``/``args`` with the masked text; it also masks string ``extra`` attributes
(the JSON formatter prints them) and the formatted exception and stack text.

What is masked: phone numbers (E.164 with ``+``, Brazilian formats, bare runs of 10–13 digits,
which covers WhatsApp ids), CPFs and CNPJs, e-mail addresses, bearer tokens, our API tokens
(``isp_…``) and ``access_token=``/``token=`` query parameters. The filter is conservative: a
10–13-digit number that is not a phone (a Unix timestamp) is masked too; protocol numbers
(14 digits) and dates stay readable.
"""

from __future__ import annotations

import logging
import re
from typing import Any

_REPLACEMENTS: list[tuple[re.Pattern[str], str]] = [
    # Credentials first, so their digits are not half-masked as phones.
    (re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]+"), "Bearer [token]"),
    (re.compile(r"\bisp_[A-Za-z0-9_-]{8,}"), "[token]"),
    (
        re.compile(r"(?i)\b(access_token|token|api_key|apikey|secret|password)=([^&\s\"']+)"),
        r"\1=[token]",
    ),
    (re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"), "[email]"),
    # CNPJ 12.345.678/0001-90 and CPF 123.456.789-09 (formatted; bare CPFs are 11 digits below).
    (re.compile(r"(?<!\d)\d{2}\.?\d{3}\.?\d{3}/\d{4}-?\d{2}(?!\d)"), "[cnpj]"),
    (re.compile(r"(?<![\d.])\d{3}\.\d{3}\.\d{3}-?\d{2}(?!\d)"), "[cpf]"),
    # International form: + then 10–15 digits with optional separators.
    (re.compile(r"\+\d(?:[\s().-]{0,2}\d){9,14}(?!\d)"), "[phone]"),
    # Brazilian forms: (11) 98765-4321, 11 98765-4321, 98765-4321, 3456-7890.
    (re.compile(r"(?<![\w-])(?:\(?\d{2}\)?[\s.-]?)?9?\d{4}[\s.-]\d{4}(?![\w-])"), "[phone]"),
    # Bare runs: wa_ids (55 + DDD + number), national numbers, bare CPFs.
    (re.compile(r"(?<![\w/-])\d{10,13}(?![\w/-])"), "[phone]"),
]

# LogRecord attributes that belong to logging itself (never user-supplied ``extra``).
_STANDARD_ATTRS = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys()
    | {"message", "asctime", "taskName"}
)


def mask(text: str) -> str:
    """Return ``text`` with personal data and credentials replaced by placeholders."""
    for pattern, replacement in _REPLACEMENTS:
        text = pattern.sub(replacement, text)
    return text


def _mask_value(value: Any) -> Any:
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, dict):
        return {k: _mask_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_mask_value(v) for v in value)
    return value


class PIIMaskingFilter(logging.Filter):
    """Masks personal data in the message, args, ``extra`` fields and exception text."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not lose the record
            message = f"{record.msg!s} {record.args!r}"
        record.msg = mask(message)
        record.args = None
        for name, value in list(record.__dict__.items()):
            if name not in _STANDARD_ATTRS:
                setattr(record, name, _mask_value(value))
        if record.exc_info:
            record.exc_text = mask(self._formatter.formatException(record.exc_info))
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = mask(record.exc_text)
        if record.stack_info:
            record.stack_info = mask(record.stack_info)
        return True

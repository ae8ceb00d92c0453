"""How money and dates read to a Brazilian customer: ``R$ 1.234,56``, São Paulo time, pt-BR days.

Formatting is done by hand rather than through the active locale: the bot must write pt-BR
figures even in a worker whose locale is English, and a customer must never read ``R$ 1,234.56``.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal

from django.utils import timezone

WEEKDAYS = ("segunda", "terça", "quarta", "quinta", "sexta", "sábado", "domingo")
WEEKDAYS_SHORT = ("seg", "ter", "qua", "qui", "sex", "sáb", "dom")
MONTHS = (
    "janeiro",
    "fevereiro",
    "março",
    "abril",
    "maio",
    "junho",
    "julho",
    "agosto",
    "setembro",
    "outubro",
    "novembro",
    "dezembro",
)


def brl(amount: Decimal | int | str) -> str:
    """``Decimal("1234.5")`` → ``"R$ 1.234,50"`` (negative amounts as ``-R$ 10,00``)."""
    value = Decimal(str(amount)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    sign = "-" if value < 0 else ""
    units, cents = f"{abs(value):.2f}".split(".")
    groups = []
    while len(units) > 3:
        groups.insert(0, units[-3:])
        units = units[:-3]
    groups.insert(0, units)
    return f"{sign}R$ {'.'.join(groups)},{cents}"


def local(moment: datetime) -> datetime:
    """``moment`` in the project's time zone (America/Sao_Paulo)."""
    return timezone.localtime(moment)


def day(value: date | datetime) -> str:
    """``25/11/2026`` (a datetime is read in São Paulo time first)."""
    if isinstance(value, datetime):
        value = local(value).date()
    return value.strftime("%d/%m/%Y")


def day_and_time(moment: datetime) -> str:
    """``25/11/2026 às 14:03`` in São Paulo time."""
    moment = local(moment)
    return f"{moment:%d/%m/%Y} às {moment:%H:%M}"


def hour(moment: datetime) -> str:
    """``8h`` or ``8h30`` in São Paulo time."""
    moment = local(moment)
    return f"{moment.hour}h" + (f"{moment.minute:02d}" if moment.minute else "")


def window_label(start: datetime, end: datetime) -> str:
    """``ter 02/12 8h–12h``: a visit window in 24 characters or fewer (WhatsApp list rows)."""
    s = local(start)
    return f"{WEEKDAYS_SHORT[s.weekday()]} {s:%d/%m} {hour(start)}–{hour(end)}"


def window_sentence(start: datetime, end: datetime) -> str:
    """``terça-feira, 02/12/2026, entre 8h e 12h``."""
    s = local(start)
    weekday = WEEKDAYS[s.weekday()]
    if s.weekday() < 5:
        weekday += "-feira"
    return f"{weekday}, {s:%d/%m/%Y}, entre {hour(start)} e {hour(end)}"


def month_year(value: date) -> str:
    """``novembro/2026``."""
    return f"{MONTHS[value.month - 1]}/{value.year}"

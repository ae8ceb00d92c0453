"""Deadlines: LGPD requests (calendar days), incidents (business days with national holidays)
and Anatel/SAC demands.

Brazilian national holidays are computed here, with no outside calendar: the fixed-date ones
(Lei 662/1949, Lei 6.802/1980, Lei 14.759/2023 for 20 Nov, national since 2024) and Good Friday
(Easter − 2 days), which the federal calendar treats as a holiday. Carnival Monday/Tuesday and
Corpus Christi are federal *pontos facultativos*, not holidays: by default they count as
business days, which gives the earlier (safer) incident deadline; set
``COMPLIANCE_OPTIONAL_HOLIDAYS_ARE_OFF`` to skip them too. State and municipal holidays are
not considered (the ANPD is federal).

Counting rule for "N dias úteis a partir de": the day of the event is excluded, the count
starts on the next business day, and the deadline is the end (23:59:59, São Paulo) of the Nth
business day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

SAO_PAULO = ZoneInfo("America/Sao_Paulo")


def easter_sunday(year: int) -> date:
    """Gregorian Easter (the anonymous Gregorian algorithm, "Meeus/Jones/Butcher")."""
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    ell = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * ell) // 451
    month, day = divmod(h + ell - 7 * m + 114, 31)
    return date(year, month, day + 1)


@lru_cache(maxsize=64)
def national_holidays(year: int) -> dict[date, str]:
    """Holidays on which federal bodies do not work (``dias não úteis``), for ``year``."""
    easter = easter_sunday(year)
    days = {
        date(year, 1, 1): "Confraternização Universal",
        date(year, 4, 21): "Tiradentes",
        date(year, 5, 1): "Dia do Trabalho",
        date(year, 9, 7): "Independência do Brasil",
        date(year, 10, 12): "Nossa Senhora Aparecida",
        date(year, 11, 2): "Finados",
        date(year, 11, 15): "Proclamação da República",
        date(year, 12, 25): "Natal",
        easter - timedelta(days=2): "Paixão de Cristo (Sexta-feira Santa)",
    }
    if year >= 2024:
        days[date(year, 11, 20)] = "Dia Nacional de Zumbi e da Consciência Negra"
    return days


@lru_cache(maxsize=64)
def optional_holidays(year: int) -> dict[date, str]:
    """Federal pontos facultativos tied to Easter (counted as business days by default)."""
    easter = easter_sunday(year)
    return {
        easter - timedelta(days=48): "Carnaval (segunda-feira)",
        easter - timedelta(days=47): "Carnaval (terça-feira)",
        easter + timedelta(days=60): "Corpus Christi",
    }


def holiday_name(day: date) -> str | None:
    """The national holiday on ``day`` (with the pontos facultativos when
    ``COMPLIANCE_OPTIONAL_HOLIDAYS_ARE_OFF``), or None: the one rule every calendar here uses,
    incident deadlines and the teams' business hours alike."""
    name = national_holidays(day.year).get(day)
    if name is None and settings.COMPLIANCE_OPTIONAL_HOLIDAYS_ARE_OFF:
        name = optional_holidays(day.year).get(day)
    return name


def is_business_day(day: date) -> bool:
    return day.weekday() < 5 and holiday_name(day) is None


def add_business_days(start: date, count: int) -> date:
    """The ``count``-th business day after ``start`` (``start`` itself is not counted)."""
    day = start
    remaining = count
    while remaining > 0:
        day += timedelta(days=1)
        if is_business_day(day):
            remaining -= 1
    return day


def _end_of_day(day: date) -> datetime:
    return datetime.combine(day, time(23, 59, 59), tzinfo=SAO_PAULO)


def business_deadline(moment: datetime, business_days: int) -> datetime:
    """End of the ``business_days``-th business day after ``moment`` (São Paulo time)."""
    local_day = timezone.localtime(moment, SAO_PAULO).date()
    return _end_of_day(add_business_days(local_day, business_days))


# --- LGPD --------------------------------------------------------------------------------------


def dsr_due_at(received_at: datetime) -> datetime:
    """LGPD Art. 19 II: 15 days "contado da data do requerimento" — calendar days (the law says
    "dias", not "dias úteis"), ending at 23:59:59 São Paulo of the 15th day after receipt."""
    local_day = timezone.localtime(received_at, SAO_PAULO).date()
    return _end_of_day(local_day + timedelta(days=settings.COMPLIANCE_DSR_DEADLINE_DAYS))


INCIDENT_NOTICE_BUSINESS_DAYS = 3  # Res. CD/ANPD 15/2024 arts. 6 and 9
INCIDENT_COMPLEMENT_BUSINESS_DAYS = 20  # Res. CD/ANPD 15/2024 art. 6 §


def incident_notice_due_at(discovered_at: datetime) -> datetime:
    """3 business days from when the controller learned of the incident (ANPD and subjects)."""
    return business_deadline(discovered_at, INCIDENT_NOTICE_BUSINESS_DAYS)


def incident_complement_due_at(notified_at: datetime) -> datetime:
    return business_deadline(notified_at, INCIDENT_COMPLEMENT_BUSINESS_DAYS)


# --- Anatel / SAC -------------------------------------------------------------------------------


# The in-force ceiling for a cancellation that is not completed in the contact: a SAC demand is
# answered within 7 calendar days (Decreto 11.034/2022), stricter than RGC 765 art. 10's 10 days
# for requests. RGC 765's own cancellation article was not retrieved (COMPLIANCE-FACTS §3.1,
# UNCERTAIN), so the provider's target (settings.COMPLIANCE_SAC_CANCELLATION_BUSINESS_DAYS,
# default 2 business days — the rule of the revoked Res. 632/2014 arts. 14–15, kept because it
# is stricter than every rule in force) may shorten the ceiling and never lengthen it.
CANCELLATION_CEILING_DAYS = 7


@dataclass(frozen=True)
class SacDeadline:
    kind: str
    due_at: datetime
    answer_in_session: bool  # must be answered during the contact when possible
    basis: Any


# kind → (calendar days, business days, answered in the session, legal basis). The 7/10-day split
# follows Anatel's own summary of RGC 765 art. 10. Cancellation: see cancellation_rule().
SAC_RULES: dict[str, tuple[int, int, bool, Any]] = {
    "information": (
        10,
        0,
        True,
        _("RGC Anatel 765/2023 art. 10: no atendimento; se não for possível, até 10 dias"),
    ),
    "request": (
        10,
        0,
        True,
        _("RGC Anatel 765/2023 art. 10: no atendimento; se não for possível, até 10 dias"),
    ),
    "complaint": (
        7,
        0,
        False,
        _("RGC Anatel 765/2023 art. 10 e Decreto 11.034/2022: reclamação em até 7 dias"),
    ),
    "cancellation": (
        CANCELLATION_CEILING_DAYS,
        0,
        True,
        _(
            "Cancelamento (solicitação): no atendimento (RGC Anatel 765/2023 art. 10); se não "
            "for possível, até 7 dias (Decreto 11.034/2022), menos que os 10 do art. 10"
        ),
    ),
    "history": (
        5,
        0,
        False,
        _("Decreto 11.034/2022 art. 12 §2º, I: histórico enviado em até 5 dias"),
    ),
}


def sac_deadline(*, opened_at: datetime, kind: str) -> SacDeadline:
    """When an Anatel/SAC demand of ``kind`` must be answered, counted from ``opened_at``.

    ``kind``: information, request, complaint, cancellation, history (``KeyError`` otherwise).
    Calendar-day deadlines end at 23:59:59 São Paulo of the last day.
    """
    calendar_days, business_days, in_session, basis = SAC_RULES[kind]
    if business_days:
        due = business_deadline(opened_at, business_days)
    else:
        local_day = timezone.localtime(opened_at, SAO_PAULO).date()
        due = _end_of_day(local_day + timedelta(days=calendar_days))
    if kind == "cancellation":
        target = max(0, int(settings.COMPLIANCE_SAC_CANCELLATION_BUSINESS_DAYS))
        if target:
            due = min(due, business_deadline(opened_at, target))
            basis = format_lazy(
                "{basis}; {target}",
                basis=basis,
                target=_("meta do provedor: %(n)d dia(s) útil(eis)") % {"n": target},
            )
    return SacDeadline(kind=kind, due_at=due, answer_in_session=in_session, basis=basis)

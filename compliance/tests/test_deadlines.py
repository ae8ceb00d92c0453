"""Deadlines: 15 calendar days for data-subject requests; 3 business days (national holidays)
for incidents; Anatel/SAC deadlines per demand kind."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from compliance.services import deadlines

SP = ZoneInfo("America/Sao_Paulo")


def at(y, m, d, h=10, mi=0):
    return datetime(y, m, d, h, mi, tzinfo=SP)


@pytest.mark.parametrize(
    ("year", "easter"),
    [
        (2024, date(2024, 3, 31)),
        (2025, date(2025, 4, 20)),
        (2026, date(2026, 4, 5)),
        (2038, date(2038, 4, 25)),
    ],
)
def test_easter(year, easter):
    assert deadlines.easter_sunday(year) == easter


def test_national_holidays_2025():
    days = deadlines.national_holidays(2025)
    assert date(2025, 4, 18) in days  # Good Friday
    assert date(2025, 11, 20) in days  # Consciência Negra, national since 2024
    assert date(2025, 3, 3) not in days  # Carnival Monday is a ponto facultativo
    assert date(2025, 6, 19) not in days  # Corpus Christi is a ponto facultativo
    assert date(2023, 11, 20) not in deadlines.national_holidays(2023)


def test_dsr_deadline_is_15_calendar_days_ending_at_midnight():
    due = deadlines.dsr_due_at(at(2025, 12, 20, 15))
    assert due == datetime(2026, 1, 4, 23, 59, 59, tzinfo=SP)  # crosses Christmas and New Year


def test_incident_discovered_on_the_wednesday_before_good_friday():
    # Thu 17 Apr (1), Fri 18 Good Friday, weekend, Mon 21 Tiradentes, Tue 22 (2), Wed 23 (3)
    due = deadlines.incident_notice_due_at(at(2025, 4, 16))
    assert due == datetime(2025, 4, 23, 23, 59, 59, tzinfo=SP)


def test_incident_discovered_on_14_november_skips_15_and_20_november():
    # 2024: Thu 14; Fri 15 holiday; weekend; Mon 18 (1); Tue 19 (2); Wed 20 holiday; Thu 21 (3)
    due = deadlines.incident_notice_due_at(at(2024, 11, 14))
    assert due.date() == date(2024, 11, 21)


def test_incident_around_christmas_and_new_year():
    # Tue 23 Dec 2025: Wed 24 (1), Thu 25 Christmas, Fri 26 (2), weekend, Mon 29 (3)
    assert deadlines.incident_notice_due_at(at(2025, 12, 23)).date() == date(2025, 12, 29)
    # Mon 29 Dec: Tue 30 (1), Wed 31 (2), Thu 1 Jan holiday, Fri 2 Jan (3)
    assert deadlines.incident_notice_due_at(at(2025, 12, 29)).date() == date(2026, 1, 2)


def test_incident_discovered_late_at_night_counts_in_sao_paulo_time():
    # 01:30 UTC on Thu 17 Apr is still Wed 16 Apr in São Paulo.
    moment = datetime(2025, 4, 17, 1, 30, tzinfo=ZoneInfo("UTC"))
    assert deadlines.incident_notice_due_at(moment).date() == date(2025, 4, 23)


def test_incident_discovered_on_a_saturday_starts_counting_on_monday():
    assert deadlines.incident_notice_due_at(at(2025, 5, 31)).date() == date(2025, 6, 4)


def test_carnival_counts_as_business_days_unless_configured(settings):
    # Fri 28 Feb 2025: Mon 3 Mar (1) Tue 4 Mar (2) Wed 5 Mar (3) — Carnival counted.
    assert deadlines.incident_notice_due_at(at(2025, 2, 28)).date() == date(2025, 3, 5)
    settings.COMPLIANCE_OPTIONAL_HOLIDAYS_ARE_OFF = True
    assert deadlines.incident_notice_due_at(at(2025, 2, 28)).date() == date(2025, 3, 7)


def test_incident_complement_is_20_business_days():
    assert deadlines.incident_complement_due_at(at(2025, 4, 16)).date() == date(
        2025, 5, 19
    )  # 17, 22–25, 28–30, 2 May (1 May off), 5–9, 12–16, 19


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("complaint", date(2025, 4, 23)),
        ("information", date(2025, 4, 26)),
        ("history", date(2025, 4, 21)),
        ("cancellation", date(2025, 4, 22)),  # 2 business days: Thu 17, (Fri 18, Mon 21) Tue 22
    ],
)
def test_sac_deadlines_per_kind(kind, expected):
    deadline = deadlines.sac_deadline(opened_at=at(2025, 4, 16), kind=kind)
    assert deadline.due_at.date() == expected
    assert deadline.basis


def test_sac_deadline_refuses_unknown_kinds():
    with pytest.raises(KeyError):
        deadlines.sac_deadline(opened_at=at(2025, 4, 16), kind="elogio")


def test_the_cancellation_basis_cites_the_rules_in_force():
    """RGC 765/2023 revoked Res. 632/2014: the basis shown to staff names the rules in force."""
    basis = str(deadlines.sac_deadline(opened_at=at(2025, 4, 16), kind="cancellation").basis)
    assert "765/2023" in basis and "11.034/2022" in basis
    assert "632" not in basis


@pytest.mark.parametrize(
    ("business_days", "expected"),
    [
        (2, date(2025, 4, 22)),  # the default target
        (1, date(2025, 4, 17)),  # a stricter target
        (0, date(2025, 4, 23)),  # no target: the ceiling, 7 calendar days (Decreto 11.034)
        (10, date(2025, 4, 23)),  # a target may shorten the ceiling, never lengthen it
    ],
)
def test_the_cancellation_target_is_configurable_within_the_legal_ceiling(
    settings, business_days, expected
):
    settings.COMPLIANCE_SAC_CANCELLATION_BUSINESS_DAYS = business_days
    deadline = deadlines.sac_deadline(opened_at=at(2025, 4, 16), kind="cancellation")
    assert deadline.due_at.date() == expected
    assert deadline.answer_in_session

"""A team's page in /admin/: supervisors keep their own teams' calendar and SLA targets, with
the change history on the page; other teams and the defaults are not theirs to change."""

from __future__ import annotations

from datetime import date, time

import pytest
from django.test import Client

from accounts.models import Role, SlaTarget, TeamHoliday, TeamOpeningHours
from accounts.tests.factories import TeamFactory, UserFactory
from accounts.tests.helpers import form_data, login_verified

pytestmark = pytest.mark.django_db


def client_for(user) -> Client:
    client = Client()
    login_verified(client, user)
    return client


def team_page(team) -> str:
    return f"/admin/accounts/team/{team.pk}/change/"


def submit_team_page(client: Client, team, **changes) -> object:
    """Open the team's page, fill it as a person would, add inline rows, save."""
    page = client.get(team_page(team))
    assert page.status_code == 200
    data = form_data(page.content.decode(), "team_form")
    data.update(changes)
    return client.post(team_page(team), data)


def add_rows(prefix: str, rows: list[dict[str, str]], data: dict | None = None) -> dict:
    data = dict(data or {})
    for index, row in enumerate(rows):
        for field, value in row.items():
            data[f"{prefix}-{index}-{field}"] = value
    data[f"{prefix}-TOTAL_FORMS"] = str(len(rows))
    return data


def test_a_supervisor_sets_their_teams_hours_holidays_and_targets(supervisor, team_support):
    client = client_for(supervisor)
    changes = add_rows(
        "opening_hours",
        [
            {"weekday": "0", "opens_at": "08:00", "closes_at": "18:00"},
            {"weekday": "5", "opens_at": "08:00", "closes_at": "12:00"},
        ],
    )
    changes = add_rows(
        "holidays", [{"day": "2025-11-24", "description": "Feriado municipal"}], changes
    )
    changes = add_rows(
        "sla_targets",
        [
            {
                "priority": "1",
                "first_response_minutes": "30",
                "resolution_minutes": "480",
                "business_hours": "on",
            }
        ],
        changes,
    )

    response = submit_team_page(client, team_support, **changes)

    assert response.status_code == 302, response.context and response.context["errors"]
    assert set(
        TeamOpeningHours.objects.filter(team=team_support).values_list(
            "weekday", "opens_at", "closes_at"
        )
    ) == {(0, time(8), time(18)), (5, time(8), time(12))}
    assert TeamHoliday.objects.get(team=team_support).day == date(2025, 11, 24)
    target = SlaTarget.objects.get(team=team_support)
    assert (target.first_response_minutes, target.resolution_minutes) == (30, 480)

    history = client.get(f"/admin/accounts/team/{team_support.pk}/historico/")
    assert history.status_code == 200
    entries = [e for e in history.context["entries"] if e["actor"] == supervisor.username]
    objects = " | ".join(entry["object"] for entry in entries)
    assert "feriado da equipe: 24/11/2025 Feriado municipal" in objects
    assert "horário de atendimento: segunda-feira 08:00–18:00" in objects
    assert "meta de SLA" in objects


def test_opening_hours_must_close_after_they_open(supervisor, team_support):
    changes = add_rows(
        "opening_hours", [{"weekday": "1", "opens_at": "18:00", "closes_at": "08:00"}]
    )

    response = submit_team_page(client_for(supervisor), team_support, **changes)

    assert response.status_code == 200
    assert "depois da abertura" in response.content.decode()
    assert not TeamOpeningHours.objects.exists()


def test_supervisors_see_and_change_only_their_own_teams(team_support):
    sales = TeamFactory(slug="comercial", name="Comercial")
    boss = UserFactory(username="chefe-suporte", role=Role.SUPERVISOR, teams=[team_support])
    client = client_for(boss)

    listing = client.get("/admin/accounts/team/")
    assert [t.name for t in listing.context["cl"].result_list] == [team_support.name]
    assert client.get(team_page(sales)).status_code == 302  # "does not exist" for them
    assert client.get(f"/admin/accounts/team/{sales.pk}/historico/").status_code == 302


def test_the_default_targets_are_the_admins(supervisor, admin_member):
    default = SlaTarget.objects.create(
        team=None, priority=1, first_response_minutes=60, resolution_minutes=600
    )
    url = f"/admin/accounts/slatarget/{default.pk}/change/"
    payload = {
        "team": "",
        "priority": "1",
        "first_response_minutes": "5",
        "resolution_minutes": "600",
        "business_hours": "on",
    }

    supervisors = client_for(supervisor)
    assert supervisors.get(url).status_code == 200  # visible, read-only
    assert supervisors.post(url, payload).status_code == 403
    default.refresh_from_db()
    assert default.first_response_minutes == 60

    assert client_for(admin_member).post(url, payload).status_code == 302
    default.refresh_from_db()
    assert default.first_response_minutes == 5


def test_resolution_cannot_be_due_before_the_first_response(admin_member, team_support):
    response = client_for(admin_member).post(
        "/admin/accounts/slatarget/add/",
        {
            "team": team_support.pk,
            "priority": "2",
            "first_response_minutes": "60",
            "resolution_minutes": "30",
            "business_hours": "on",
        },
    )

    assert response.status_code == 200
    assert not SlaTarget.objects.exists()


def test_the_team_page_shows_members_with_capacity(admin_member, agent, team_support):
    page = client_for(admin_member).get(team_page(team_support))

    html = page.content.decode()
    assert agent.username in html
    assert "capacidade (conversas simultâneas)" in html.lower()

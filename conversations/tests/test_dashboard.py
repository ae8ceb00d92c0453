"""The supervisors' dashboard: who may open it, the figures against known data, the CSV."""

from __future__ import annotations

import csv
import io
import re
from datetime import date, datetime, time, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone, translation

from accounts.models import Presence, Role, SlaTarget
from accounts.tests.factories import TeamFactory, UserFactory
from conversations import dashboard, services
from conversations.dashboard_views import csv_header
from conversations.models import Conversation
from conversations.tests.factories import ConversationFactory

pytestmark = pytest.mark.django_db

DAY = date(2026, 3, 10)  # a Tuesday; all times below are São Paulo local times
URLS = (
    "/console/dashboard/",
    "/console/dashboard/live/",
    "/console/dashboard/snapshot/",
    "/console/dashboard/export.csv",
)


def at(hh: int, mm: int, day: date = DAY) -> datetime:
    return timezone.make_aware(datetime.combine(day, time(hh, mm)))


def closed(team, opened, closed_at, resolution="resolved", **fields) -> Conversation:
    return ConversationFactory(
        team=team,
        state=Conversation.State.CLOSED,
        opened_at=opened,
        closed_at=closed_at,
        resolution=resolution,
        **fields,
    )


def csat(score: int, answered: datetime, **extra) -> dict:
    return {
        "csat_score": score,
        "csat_answered_at": answered,
        "csat_requested_at": answered,
        **extra,
    }


@pytest.fixture
def day_of_work(team_support, team_billing, agent):
    """A known day: 7 conversations opened on DAY, 6 of them closed (one as spam)."""
    esc = {"escalated_at": None}
    rows = {
        # opened 09:10, waited for a person from 09:12, answered 09:17, closed 09:40
        "c1": closed(
            team_support,
            at(9, 10),
            at(9, 40),
            intent="no_connection",
            escalated_at=at(9, 12),
            escalation_reason="bot:human_requested",
            first_response_at=at(9, 17),
            assigned_agent=agent,
            **csat(5, at(9, 41), csat_comment="Ótimo!", csat_comment_at=at(9, 42)),
        ),
        "c2": closed(
            team_support,
            at(9, 30),
            at(10, 30),
            intent="no_connection",
            escalated_at=at(9, 31),
            escalation_reason="bot:low_confidence",
            first_response_at=at(9, 41),
            **csat(4, at(10, 31)),
        ),
        # the bot resolved these two without any human
        "c3": closed(
            team_billing,
            at(14, 0),
            at(14, 5),
            "resolved_by_bot",
            intent="billing",
            **csat(3, at(14, 6)),
        ),
        "c4": closed(
            team_billing,
            at(14, 20),
            at(14, 22),
            "resolved_by_bot",
            intent="billing",
            csat_requested_at=at(14, 22),
            **esc,
        ),
        "c5": closed(
            team_support,
            at(15, 0),
            at(16, 0),
            escalated_at=at(15, 1),
            escalation_reason="bot:human_requested",
            first_response_at=at(15, 21),
            **csat(1, at(16, 2)),
        ),
        "spam": closed(team_support, at(16, 0), at(16, 1), "spam"),
        # still being served; answered 40 min after opening (never went through the bot)
        "c7": ConversationFactory(
            team=team_support,
            state=Conversation.State.ASSIGNED,
            assigned_agent=agent,
            opened_at=at(10, 0),
            first_response_at=at(10, 40),
        ),
    }
    # Another team's day, which the supervisor (suporte + financeiro) does not see.
    elsewhere = TeamFactory(slug="outra-cidade")
    closed(elsewhere, at(11, 0), at(11, 5), "resolved_by_bot", **csat(5, at(11, 6)))
    return rows


def test_period_figures_match_the_known_day(supervisor, day_of_work):
    figures = dashboard.period_figures(user=supervisor, period=dashboard.Period(DAY, DAY))

    assert (figures.opened, figures.escalated, figures.closed) == (7, 3, 6)
    # containment: 2 resolved by the bot out of 5 closed (spam left out)
    assert (figures.closed_by_bot, figures.closed_rated) == (2, 5)
    assert figures.containment_rate == pytest.approx(40.0)
    # first response (s): 300, 600, 1200, 2400 → p50 900, p90 2040 (linear interpolation)
    assert figures.first_response.count == 4
    assert figures.first_response.p50 == pytest.approx(900)
    assert figures.first_response.p90 == pytest.approx(2040)
    # resolution (s), from when people had it, for the three people had: c1 28 min, c2 59 min,
    # c5 59 min → 1680, 3540, 3540 → p50 3540, p90 3540 (c3 and c4 were the bot's alone)
    assert figures.resolution.count == 3
    assert figures.resolution.p50 == pytest.approx(3540)
    assert figures.resolution.p90 == pytest.approx(3540)
    # CSAT: 5, 4, 3, 1 → 3.25; five surveys sent; one comment
    assert figures.csat.answered == 4 and figures.csat.requested == 5
    assert figures.csat.average == pytest.approx(3.25)
    assert figures.csat.distribution == {1: 1, 2: 0, 3: 1, 4: 1, 5: 1}
    assert figures.csat.comments == 1


def test_admins_see_every_team_supervisors_only_theirs(supervisor, admin_member, day_of_work):
    period = dashboard.Period(DAY, DAY)
    assert dashboard.period_figures(user=supervisor, period=period).closed == 6
    assert dashboard.period_figures(user=admin_member, period=period).closed == 7


def test_volume_by_hour_intent_and_escalation_reasons(supervisor, day_of_work):
    period = dashboard.Period(DAY, DAY)

    hours = dashboard.volume_by_hour(user=supervisor, period=period)
    assert {h: n for h, n in enumerate(hours) if n} == {9: 2, 10: 1, 14: 2, 15: 1, 16: 1}

    intents = {(i.key, i.count) for i in dashboard.volume_by_intent(user=supervisor, period=period)}
    assert intents == {("no_connection", 2), ("billing", 2), ("", 3)}
    labels = {i.key: i.label for i in dashboard.volume_by_intent(user=supervisor, period=period)}
    assert labels["billing"] == "Fatura / 2ª via / PIX"  # registered by the bot app
    assert labels[""] == "Não identificada"

    reasons = dashboard.escalation_reasons(user=supervisor, period=period)
    assert [(r.key, r.label, r.count) for r in reasons] == [
        ("bot:human_requested", "Cliente pediu atendente", 2),
        ("bot:low_confidence", "Confiança baixa na intenção", 1),
    ]


def test_waiting_count_longest_wait_and_agents_now(supervisor, agent, team_support):
    now = timezone.now()
    ConversationFactory(
        team=team_support, state="waiting", waiting_since=now - timedelta(minutes=30)
    )
    ConversationFactory(
        team=team_support, state="waiting", waiting_since=now - timedelta(minutes=5)
    )
    ConversationFactory(team=team_support, state="assigned", assigned_agent=agent)
    ConversationFactory(team=team_support, state="bot")
    UserFactory(role=Role.AGENT, teams=[team_support], presence=Presence.AWAY)
    UserFactory(role=Role.AGENT, teams=[team_support], presence=Presence.OFFLINE)

    live = dashboard.live_counts(user=supervisor, now=now)
    board = dashboard.agents_board(user=supervisor)

    assert live == {
        "waiting": 2,
        "longest_wait_seconds": pytest.approx(1800),
        "in_service": 1,
        "with_bot": 1,
    }
    # online: the agent and the supervisor (who may hold conversations too)
    assert (board.online, board.away, board.offline) == (2, 1, 1)
    assert board.agents[0] == agent and board.agents[0].load == 1
    assert supervisor in board.agents


def test_the_snapshot_costs_a_fixed_number_of_queries(
    supervisor, day_of_work, django_assert_max_num_queries
):
    for _ in range(20):
        closed(None, at(12, 0), at(12, 30), intent="billing", **csat(4, at(12, 31)))
    with django_assert_max_num_queries(16):
        snapshot = dashboard.dashboard_snapshot(user=supervisor, period=dashboard.Period(DAY, DAY))
    assert snapshot.figures.closed == 26


def test_times_count_from_when_people_first_had_the_conversation(supervisor, team_support, agent):
    """First response and resolution start where the SLA clocks start (``sla_started_at``):
    a claim straight from the bot starts them at the claim, and a return to the queue does
    not restart them. Conversations only the bot handled have no first response and no
    resolution time (they count in the containment)."""
    rows = [
        # talked to the bot from 11:00; an agent took it at 11:20, answered 11:22, closed 11:50
        dict(opened_at=at(11, 0), sla_started_at=at(11, 20), first_response_at=at(11, 22),
             closed_at=at(11, 50)),
        # escalated 12:05, back in the queue at 12:10, answered 12:25, closed 13:05
        dict(opened_at=at(12, 0), escalated_at=at(12, 5), sla_started_at=at(12, 5),
             waiting_since=at(12, 10), first_response_at=at(12, 25), closed_at=at(13, 5)),
        # escalated 13:01, closed 13:11 without an answer
        dict(opened_at=at(13, 0), escalated_at=at(13, 1), sla_started_at=at(13, 1),
             closed_at=at(13, 11), resolution="no_response"),
        # the bot resolved it alone
        dict(opened_at=at(14, 0), closed_at=at(14, 3), resolution="resolved_by_bot"),
    ]  # fmt: skip
    for fields in rows:
        closed(
            team_support,
            fields.pop("opened_at"),
            fields.pop("closed_at"),
            fields.pop("resolution", "resolved"),
            assigned_agent=agent,
            **fields,
        )

    figures = dashboard.period_figures(user=supervisor, period=dashboard.Period(DAY, DAY))

    # first response (s): 120, 1200 → p50 660, p90 120 + 0.9 × 1080 = 1092
    assert figures.first_response.count == 2
    assert figures.first_response.p50 == pytest.approx(660)
    assert figures.first_response.p90 == pytest.approx(1092)
    # resolution (s): 600, 1800, 3600 → p50 1800, p90 1800 + 0.8 × 1800 = 3240
    assert figures.resolution.count == 3
    assert figures.resolution.p50 == pytest.approx(1800)
    assert figures.resolution.p90 == pytest.approx(3240)
    # the same per day (the CSV's rows)
    [(_day, day)] = dashboard.daily_figures(user=supervisor, period=dashboard.Period(DAY, DAY))
    assert (day.first_response, day.resolution) == (figures.first_response, figures.resolution)
    assert figures.containment_rate == pytest.approx(25.0)


def test_the_agents_board_is_the_consoles_presence_board(supervisor, agent, team_support):
    """Whoever may hold conversations (agents and supervisors) is on the board with their
    load, as on the console's presence board and in ``ispsupport_agents``."""
    from conversations import selectors

    ConversationFactory(team=team_support, state="assigned", assigned_agent=supervisor)
    ConversationFactory(team=team_support, state="assigned", assigned_agent=agent)
    ConversationFactory(team=team_support, state="assigned", assigned_agent=agent)

    board = dashboard.agents_board(user=supervisor)

    assert {(a.username, a.load) for a in board.agents} == {
        (a.username, a.load) for a in selectors.presence_board(user=supervisor)
    }
    assert [(a, a.load) for a in board.agents] == [(agent, 2), (supervisor, 1)]
    assert (board.online, board.away, board.offline) == (2, 0, 0)


def test_anatel_breaches_show_even_without_sla_targets(supervisor, team_support):
    """No team has SLA targets yet, but the legal deadline of a classified demand runs: a
    cancellation (2 business days) opened ten days ago and still open is past it."""
    now = timezone.now()
    conversation = ConversationFactory(
        team=team_support, opened_at=now - timedelta(days=10), last_customer_message_at=now
    )
    services.conversation_escalate(
        conversation=conversation, reason="test", request_kind="cancellation", now=now
    )
    period = dashboard.Period(timezone.localdate(), timezone.localdate())

    tile = dashboard.dashboard_sla(user=supervisor, period=period)

    assert tile is not None
    assert tile["breaching_now"] == 1
    assert (tile["started"], tile["breached"]) == (1, 1)


def test_the_page_and_the_live_partial_cost_the_same_queries_for_few_or_many_rows(
    console_client, supervisor, team_support, team_billing, django_assert_max_num_queries
):
    """No query per conversation, agent, intent or reason: 4 or 40 of each cost the same."""
    client = console_client(supervisor)
    now = timezone.now()

    def add(n: int) -> None:
        for i in range(n):
            team = (team_support, team_billing)[i % 2]
            agent = UserFactory(role=Role.AGENT, teams=[team], presence=Presence.ONLINE)
            ConversationFactory(
                team=team,
                state="assigned",
                assigned_agent=agent,
                intent=f"intent_{i}",
                opened_at=now,
            )
            ConversationFactory(
                team=team,
                state="waiting",
                waiting_since=now,
                opened_at=now,
                escalated_at=now,
                escalation_reason=f"bot:reason_{i}",
            )
            closed(team, now - timedelta(minutes=5), now, **csat(1 + i % 5, now))  # fmt: skip

    def queries(url: str) -> int:
        client.get(url)  # warm the session and permission caches
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        return len(captured)

    add(4)
    few = {url: queries(url) for url in ("/console/dashboard/", "/console/dashboard/live/")}
    add(36)
    for url, count in few.items():
        assert queries(url) == count, url
        with django_assert_max_num_queries(24):
            client.get(url)


# --- pages -------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", URLS)
def test_anonymous_users_are_sent_to_log_in(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


@pytest.mark.parametrize("url", URLS)
def test_agents_and_the_dpo_are_refused(console_client, agent, dpo, url):
    assert console_client(agent).get(url).status_code == 403
    assert console_client(dpo).get(url).status_code == 403


def test_the_page_renders_tiles_and_svg_charts_for_supervisors(
    console_client, supervisor, day_of_work
):
    response = console_client(supervisor).get(f"/console/dashboard/?from={DAY}&to={DAY}")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Aguardando atendente" in html and "Contenção do robô" in html
    assert "40,0%" in html  # containment, pt-BR decimal comma
    assert '<svg class="chart columns"' in html and '<svg class="chart rows"' in html
    assert "3,2<small>/5</small>" in html  # CSAT average 3.25, one decimal
    assert "<script>" not in html  # the CSP allows no inline scripts
    # Works offline: every script, style sheet and link is served by us (no CDN).
    external = [u for u in re.findall(r'(?:src|href)="([^"]*)"', html) if "//" in u]
    assert not external, external
    assert "/static/console/dashboard.js" in html
    assert 'data-figure="sla"' in html and "ainda não configurado" in html


def test_the_live_partial_and_the_json_snapshot(console_client, admin_member, day_of_work):
    client = console_client(admin_member)
    live = client.get(f"/console/dashboard/live/?from={DAY}&to={DAY}")
    assert live.status_code == 200 and b'class="dash"' in live.content
    data = client.get(f"/console/dashboard/snapshot/?from={DAY}&to={DAY}").json()
    assert data["closed"] == 7
    assert data["csat"]["distribution"] == {"1": 1, "2": 0, "3": 1, "4": 1, "5": 2}
    assert data["sla"] is None


@pytest.mark.parametrize(
    "query, message",
    [
        ("from=10/03/2026", "AAAA-MM-DD"),
        ("from=2026-03-10&to=2026-03-01", "anterior"),
        ("from=2024-01-01&to=2026-03-01", "366"),
    ],
)
def test_a_bad_period_is_a_clear_400(console_client, supervisor, query, message):
    client = console_client(supervisor)
    response = client.get(f"/console/dashboard/export.csv?{query}")
    assert response.status_code == 400 and message in response.content.decode()
    snapshot = client.get(f"/console/dashboard/snapshot/?{query}")
    assert snapshot.status_code == 400 and message in snapshot.json()["message"]
    assert client.get(f"/console/dashboard/?{query}").status_code == 400


def test_csv_export_has_pt_br_headers_a_row_per_day_and_the_total(
    console_client, supervisor, day_of_work
):
    next_day = DAY + timedelta(days=1)
    response = console_client(supervisor).get(
        f"/console/dashboard/export.csv?from={DAY}&to={next_day}"
    )

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert 'filename="painel-2026-03-10_2026-03-11.csv"' in response["Content-Disposition"]
    text = response.content.decode("utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff")), delimiter=";"))
    assert rows[0][:6] == [
        "Data",
        "Conversas abertas",
        "Encaminhadas para atendentes",
        "Encerradas",
        "Resolvidas pelo robô sem atendente",
        "Contenção do robô (%)",
    ]
    assert rows[0][-6:] == ["Notas 1", "Notas 2", "Notas 3", "Notas 4", "Notas 5", "Comentários"]
    expected_day = [
        "10/03/2026", "7", "3", "6", "2", "40,0",  # opened, escalated, closed, bot, containment
        "15,0", "34,0", "59,0", "59,0",  # first response p50/p90, resolution p50/p90 (min)
        "0", "0",  # reached people (sla_started_at), of which past an SLA clock
        "5", "4", "3,25", "1", "0", "1", "1", "1", "1",  # surveys, answers, mean, 1..5, comments
    ]  # fmt: skip
    assert rows[1] == expected_day
    assert rows[2] == ["11/03/2026", "0", "0", "0", "0", "", "", "", "", "", "0", "0", "0", "0", "", "0", "0", "0", "0", "0", "0"]  # fmt: skip
    assert rows[3] == ["Total do período", *expected_day[1:]]
    assert len(rows) == 4


def test_the_export_counts_sla_breaches_per_day_as_the_tile_does(
    console_client, supervisor, team_support
):
    """Conversations that reached people each day and how many of them breached an SLA clock
    (``sla.breach_q``): the CSV's columns and the dashboard's SLA tile agree."""
    SlaTarget.objects.create(
        team=team_support, priority=1, first_response_minutes=30, resolution_minutes=240
    )
    # answered 45 minutes after reaching people: 15 minutes late
    closed(
        team_support,
        at(9, 0),
        at(10, 0),
        sla_started_at=at(9, 0),
        first_response_due_at=at(9, 30),
        first_response_at=at(9, 45),
        resolution_due_at=at(13, 0),
    )
    # answered and closed in time
    closed(
        team_support,
        at(10, 0),
        at(11, 0),
        sla_started_at=at(10, 0),
        first_response_due_at=at(10, 30),
        first_response_at=at(10, 10),
        resolution_due_at=at(14, 0),
    )
    # the next day: answered a minute before the clock
    next_day = DAY + timedelta(days=1)
    closed(
        team_support,
        at(9, 0, next_day),
        at(9, 50, next_day),
        sla_started_at=at(9, 0, next_day),
        first_response_due_at=at(9, 30, next_day),
        first_response_at=at(9, 29, next_day),
        resolution_due_at=at(13, 0, next_day),
    )
    period = dashboard.Period(DAY, next_day)

    response = console_client(supervisor).get(
        f"/console/dashboard/export.csv?from={DAY}&to={next_day}"
    )

    rows = list(csv.reader(io.StringIO(response.content.decode().lstrip("\ufeff")), delimiter=";"))
    started, breached = rows[0].index("Chegaram às pessoas"), rows[0].index("Fora do prazo (SLA)")
    assert [(row[started], row[breached]) for row in rows[1:]] == [
        ("2", "1"),
        ("1", "0"),
        ("3", "1"),
    ]
    tile = dashboard.dashboard_sla(user=supervisor, period=period)
    assert (tile["started"], tile["breached"], tile["breaching_now"]) == (3, 1, 0)


def test_english_is_available_for_the_export_headers():
    with translation.override("en"):
        assert csv_header()[:2] == ["Date", "Conversations opened"]
    assert csv_header()[:2] == ["Data", "Conversas abertas"]


def test_grafanas_service_panels_count_what_this_dashboard_counts():
    """Containment and resolution in ``deploy/grafana-dashboard.json`` leave out what this
    dashboard leaves out (spam and duplicates are no service), so both tell the same story."""
    from pathlib import Path

    from ispsupport.tests.test_metrics_docs import _dashboard_expressions

    assert (Path(__file__).parents[2] / "deploy" / "grafana-dashboard.json").exists()
    excluded = '{resolution!~"' + "|".join(sorted(dashboard.NOT_RATED)) + '"}'
    by_title: dict[str, list[str]] = {}
    for title, expr in _dashboard_expressions():
        by_title.setdefault(title, []).append(expr)

    (containment,) = by_title["Contenção pelo robô (24 h)"]
    numerator, denominator = containment.split(" / ")
    assert 'resolution="resolved_by_bot"' in numerator
    assert f"ispsupport_conversations_closed_total{excluded}" in denominator
    for expr in by_title["Resolução (p50 / p90)"]:
        assert f"ispsupport_conversation_resolution_seconds_bucket{excluded}" in expr


def test_the_dashboard_speaks_english_when_the_browser_asks(console_client, supervisor):
    response = console_client(supervisor).get("/console/dashboard/", HTTP_ACCEPT_LANGUAGE="en")

    html = response.content.decode()
    assert response.status_code == 200
    for text in ("Bot containment", "Closed today", "First agent response", "Agents now"):
        assert text in html, text
    assert "Contenção do robô" not in html

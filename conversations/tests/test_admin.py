"""The supervisors' workplace in /admin/: actions through the services, filters, the SLA page,
and the read-only message history written to the personal-data access log.

Every test goes through HTTP as a person would (a logged-in client with a verified second
factor) and checks the rows, events and access-log entries that result.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Role, SlaTarget
from accounts.tests.factories import TeamFactory, UserFactory
from accounts.tests.helpers import login_verified
from compliance.models import AccessLogEntry
from conversations import services
from conversations.models import Conversation, ConversationEvent, ConversationNote
from conversations.tests.factories import ConversationFactory, CustomerFactory, MessageFactory

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/conversations/conversation/"
SLA_PAGE = "/admin/conversations/conversation/sla/"


def client_for(user) -> Client:
    client = Client()
    login_verified(client, user)
    return client


def waiting(team, *, minutes_ago: int = 0, **kwargs) -> Conversation:
    at = timezone.now() - timedelta(minutes=minutes_ago)
    conversation = ConversationFactory(opened_at=at, last_customer_message_at=at)
    return services.conversation_escalate(
        conversation=conversation, reason="test", team=team, now=at, **kwargs
    )


def assigned(team, agent) -> Conversation:
    return services.conversation_assign(conversation=waiting(team), agent=agent)


def act(client: Client, action: str, conversations, **data):
    return client.post(
        CHANGELIST,
        {"action": action, "_selected_action": [c.pk for c in conversations], **data},
    )


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def supervisor_elsewhere(db):
    """A supervisor of a third team, who supervises neither support nor billing."""
    sales = TeamFactory(slug="comercial", name="Comercial")
    return UserFactory(username="supervisor-comercial", role=Role.SUPERVISOR, teams=[sales])


# --- actions ------------------------------------------------------------------------------------


def test_reassign_asks_for_the_agent_then_assigns_through_the_service(
    supervisor, agent, team_support
):
    conversation = waiting(team_support)
    client = client_for(supervisor)

    form = act(client, "reassign_conversations", [conversation])
    assert form.status_code == 200
    assert conversation.protocol in form.content.decode()
    assert 'name="agent"' in form.content.decode()

    done = act(client, "reassign_conversations", [conversation], apply="1", agent=agent.pk)

    assert done.status_code == 302
    conversation.refresh_from_db()
    assert (conversation.state, conversation.assigned_agent) == ("assigned", agent)
    event = conversation.events.filter(kind=ConversationEvent.Kind.ASSIGNED).latest("pk")
    assert event.actor == supervisor
    assert event.data["reason"] == "assigned_by_supervisor"


def test_transfer_to_another_team_with_a_note(supervisor, agent, team_support, team_billing):
    conversation = assigned(team_support, agent)

    response = act(
        client_for(supervisor),
        "transfer_conversations",
        [conversation],
        apply="1",
        team=team_billing.pk,
        note="Cliente pediu segunda via",
    )

    assert response.status_code == 302
    conversation.refresh_from_db()
    assert conversation.team == team_billing
    assert (conversation.state, conversation.assigned_agent) == ("waiting", None)
    event = conversation.events.get(kind=ConversationEvent.Kind.TRANSFERRED)
    assert event.actor == supervisor and event.data["to_team_id"] == team_billing.pk
    assert ConversationNote.objects.get(pk=event.data["note_id"]).text == (
        "Cliente pediu segunda via"
    )


def test_transfer_form_refuses_an_agent_of_another_team(
    supervisor, agent, other_agent, team_support, team_billing
):
    conversation = assigned(team_support, agent)

    response = act(
        client_for(supervisor),
        "transfer_conversations",
        [conversation],
        apply="1",
        team=team_support.pk,
        agent=other_agent.pk,
    )

    assert response.status_code == 400
    assert "não é da equipe escolhida" in response.content.decode()
    conversation.refresh_from_db()
    assert conversation.assigned_agent == agent
    assert not conversation.events.filter(kind=ConversationEvent.Kind.TRANSFERRED).exists()


def test_change_priority_recomputes_the_sla(supervisor, team_support):
    SlaTarget.objects.create(
        team=team_support,
        priority=3,
        first_response_minutes=5,
        resolution_minutes=60,
        business_hours=False,
    )
    conversation = waiting(team_support)

    act(client_for(supervisor), "change_priority", [conversation], apply="1", priority="3")

    conversation.refresh_from_db()
    assert conversation.priority == Conversation.Priority.URGENT
    assert conversation.first_response_due_at == conversation.sla_started_at + timedelta(minutes=5)
    event = conversation.events.get(kind=ConversationEvent.Kind.PRIORITY)
    assert (event.actor, event.data) == (supervisor, {"from": 1, "to": 3})


def test_close_with_a_resolution(supervisor, agent, team_support):
    conversation = assigned(team_support, agent)

    act(
        client_for(supervisor),
        "close_conversations",
        [conversation],
        apply="1",
        resolution="resolved",
        note="Equipamento trocado",
    )

    conversation.refresh_from_db()
    assert conversation.state == Conversation.State.CLOSED
    assert conversation.resolution == "resolved"
    assert conversation.resolution_note == "Equipamento trocado"
    assert conversation.closed_by == supervisor
    assert conversation.events.get(kind=ConversationEvent.Kind.CLOSED).actor == supervisor


def test_return_to_queue_needs_no_form(supervisor, agent, team_support):
    conversation = assigned(team_support, agent)

    response = act(client_for(supervisor), "return_to_queue", [conversation])

    assert response.status_code == 302
    conversation.refresh_from_db()
    assert (conversation.state, conversation.assigned_agent) == ("waiting", None)
    event = conversation.events.get(kind=ConversationEvent.Kind.UNASSIGNED)
    assert event.actor == supervisor and event.data["reason"] == "returned_by_supervisor"


def test_set_request_kind_sets_the_anatel_deadline(supervisor, team_support):
    conversation = waiting(team_support)

    act(
        client_for(supervisor),
        "set_request_kind",
        [conversation],
        apply="1",
        request_kind="complaint",
    )

    conversation.refresh_from_db()
    assert conversation.request_kind == "complaint"
    assert conversation.anatel_due_at is not None
    assert conversation.events.get(kind=ConversationEvent.Kind.CLASSIFIED).actor == supervisor


def test_an_agent_gets_no_actions_and_changes_nothing(agent, team_support):
    conversation = waiting(team_support)
    client = client_for(agent)

    page = client.get(CHANGELIST)
    assert page.status_code == 200
    assert "reassign_conversations" not in page.content.decode()

    act(client, "reassign_conversations", [conversation], apply="1", agent=agent.pk)
    act(client, "change_priority", [conversation], apply="1", priority="3")

    conversation.refresh_from_db()
    assert (conversation.state, conversation.priority) == ("waiting", 1)
    assert not conversation.events.exclude(kind=ConversationEvent.Kind.ESCALATED).exists()


def test_a_supervisor_of_another_team_changes_nothing(supervisor_elsewhere, team_support):
    conversation = waiting(team_support)

    response = act(
        client_for(supervisor_elsewhere), "change_priority", [conversation], apply="1", priority="3"
    )

    conversation.refresh_from_db()
    assert conversation.priority == Conversation.Priority.NORMAL
    assert not conversation.events.filter(kind=ConversationEvent.Kind.PRIORITY).exists()
    assert any("ignorada" in text for text in messages_of(response))


def test_the_service_refuses_a_supervisor_of_another_team(supervisor_elsewhere, team_support):
    conversation = waiting(team_support)

    with pytest.raises(services.ActionNotAllowed):
        services.conversation_supervise(
            conversation=conversation,
            actor=supervisor_elsewhere,
            action=services.SupervisorAction.RETURN_TO_QUEUE,
        )


def test_refusals_are_reported_per_conversation(supervisor, agent, team_support):
    open_one = assigned(team_support, agent)
    closed = assigned(team_support, agent)
    services.conversation_close(conversation=closed, resolution="resolved", actor=supervisor)

    response = act(client_for(supervisor), "return_to_queue", [open_one, closed])

    open_one.refresh_from_db()
    assert open_one.state == Conversation.State.WAITING
    texts = messages_of(response)
    assert any(closed.protocol in text for text in texts)
    assert any("1 conversa" in text for text in texts)


def test_an_admin_acts_on_any_team(admin_member, team_support):
    conversation = waiting(team_support)

    act(client_for(admin_member), "change_priority", [conversation], apply="1", priority="2")

    conversation.refresh_from_db()
    assert conversation.priority == Conversation.Priority.HIGH


# --- the conversation page ----------------------------------------------------------------------


def test_the_page_shows_the_messages_read_only_and_logs_the_access(supervisor, team_support):
    conversation = waiting(team_support)
    MessageFactory(conversation=conversation, text="Minha fibra caiu de novo")
    client = client_for(supervisor)

    page = client.get(f"{CHANGELIST}{conversation.pk}/change/", REMOTE_ADDR="198.51.100.7")

    assert page.status_code == 200
    html = page.content.decode()
    assert "Minha fibra caiu de novo" in html
    assert 'name="_save"' not in html
    entry = AccessLogEntry.objects.get()
    assert entry.user == supervisor
    assert entry.action == AccessLogEntry.Action.VIEW_CONVERSATION
    assert (entry.customer_id, entry.team_id) == (conversation.customer_id, team_support.pk)
    assert (entry.object_type, entry.object_id) == ("conversation", str(conversation.pk))
    assert entry.ip == "198.51.100.7"

    refused = client.post(f"{CHANGELIST}{conversation.pk}/change/", {"priority": "3"})
    assert refused.status_code == 403


def test_another_teams_agent_cannot_open_the_page_and_nothing_is_logged(other_agent, team_support):
    conversation = waiting(team_support)
    MessageFactory(conversation=conversation, text="Minha fibra caiu de novo")

    page = client_for(other_agent).get(f"{CHANGELIST}{conversation.pk}/change/", follow=True)

    assert "Minha fibra caiu de novo" not in page.content.decode()
    assert not AccessLogEntry.objects.exists()


def test_the_dpo_reads_conversations_and_is_logged(dpo, team_support):
    conversation = waiting(team_support)

    page = client_for(dpo).get(f"{CHANGELIST}{conversation.pk}/change/")

    assert page.status_code == 200
    assert AccessLogEntry.objects.get().user == dpo


# --- the list: filters, search, queries ---------------------------------------------------------


@pytest.fixture
def fast_targets(team_support, settings):
    """30 minutes to answer; "a vencer" in the last 15."""
    settings.SLA_NEAR_DUE_MINUTES = 15
    SlaTarget.objects.create(
        team=team_support,
        priority=1,
        first_response_minutes=30,
        resolution_minutes=600,
        business_hours=False,
    )


def listed(client: Client, query: str = "") -> set[str]:
    response = client.get(CHANGELIST + query)
    assert response.status_code == 200
    return {row.protocol for row in response.context["cl"].result_list}


def test_sla_and_waiting_filters(fast_targets, supervisor, team_support):
    breached = waiting(team_support, minutes_ago=45)
    near = waiting(team_support, minutes_ago=20)
    fresh = waiting(team_support, minutes_ago=1)
    client = client_for(supervisor)

    assert listed(client, "?sla=breached") == {breached.protocol}
    assert listed(client, "?sla=near") == {near.protocol}
    assert listed(client, "?sla=attention") == {breached.protocol, near.protocol}
    assert listed(client, "?sla=ok") == {fresh.protocol}
    assert listed(client, "?espera=15") == {breached.protocol, near.protocol}
    assert listed(client, "?espera=30") == {breached.protocol}


def test_state_team_agent_and_priority_filters(supervisor, agent, team_support, team_billing):
    with_agent = assigned(team_support, agent)
    billing = waiting(team_billing)
    urgent = services.conversation_set_priority(
        conversation=waiting(team_support), priority=Conversation.Priority.URGENT, actor=supervisor
    )
    client = client_for(supervisor)

    assert listed(client, "?state__exact=waiting") == {billing.protocol, urgent.protocol}
    assert listed(client, f"?team__id__exact={team_billing.pk}") == {billing.protocol}
    assert listed(client, f"?assigned_agent__id__exact={agent.pk}") == {with_agent.protocol}
    assert listed(client, f"?priority__exact={Conversation.Priority.URGENT}") == {urgent.protocol}


def test_intent_kind_and_search(supervisor, team_support):
    complaint = waiting(team_support, request_kind="complaint")
    services.conversation_record_bot_decision(
        conversation_id=complaint.pk, data={}, intent="no_connection"
    )
    unknown = waiting(team_support)
    customer = CustomerFactory(phone_e164="+5511912345678", wa_id="5511912345678")
    by_phone = services.conversation_escalate(
        conversation=ConversationFactory(customer=customer), reason="test", team=team_support
    )
    client = client_for(supervisor)

    assert listed(client, "?intencao=no_connection") == {complaint.protocol}
    assert listed(client, "?tipo=complaint") == {complaint.protocol}
    assert unknown.protocol in listed(client, "?tipo=-")
    assert listed(client, f"?q={complaint.protocol}") == {complaint.protocol}
    assert listed(client, "?q=11 91234-5678") == {by_phone.protocol}


def test_the_list_costs_the_same_queries_for_3_or_12_rows(
    fast_targets, supervisor, agent, team_support
):
    client = client_for(supervisor)

    def count() -> int:
        client.get(CHANGELIST)  # warm caches (session, permissions)
        with CaptureQueriesContext(connection) as queries:
            assert client.get(CHANGELIST).status_code == 200
        return len(queries)

    for _ in range(3):
        assigned(team_support, agent)
    few = count()
    for _ in range(9):
        waiting(team_support, minutes_ago=40)
    assert count() == few


def test_supervisors_list_only_conversations_they_may_see(supervisor_elsewhere, team_support):
    theirs_not = waiting(team_support)
    no_team = ConversationFactory()

    seen = listed(client_for(supervisor_elsewhere))

    assert theirs_not.protocol not in seen
    assert no_team.protocol in seen


# --- the SLA page -------------------------------------------------------------------------------


def test_sla_page_lists_breaching_and_near_due_conversations_of_the_supervisors_teams(
    fast_targets, supervisor, team_support
):
    breached = waiting(team_support, minutes_ago=45)
    near = waiting(team_support, minutes_ago=20)
    fine = waiting(team_support, minutes_ago=1)

    page = client_for(supervisor).get(SLA_PAGE)

    assert page.status_code == 200
    rows = [(row.protocol, status) for row, status in page.context["rows"]]
    assert rows == [(breached.protocol, "breached"), (near.protocol, "near_due")]
    assert fine.protocol not in page.content.decode()
    summary = dict(page.context["summary"])
    assert summary[team_support.name].breached == 1
    assert summary[team_support.name].waiting == 3


def test_sla_page_by_role(
    fast_targets, supervisor_elsewhere, agent, dpo, admin_member, team_support
):
    breached = waiting(team_support, minutes_ago=45)

    assert client_for(agent).get(SLA_PAGE).status_code == 403
    assert client_for(dpo).get(SLA_PAGE).status_code == 403
    other = client_for(supervisor_elsewhere).get(SLA_PAGE)
    assert other.status_code == 200
    assert breached.protocol not in other.content.decode()
    everything = client_for(admin_member).get(SLA_PAGE)
    assert breached.protocol in everything.content.decode()


# --- canned responses -----------------------------------------------------------------------------


def test_supervisors_keep_their_teams_canned_responses_with_history(
    supervisor, supervisor_elsewhere, team_support
):
    from accounts.tests.helpers import form_data
    from conversations.models import CannedResponse

    mine = CannedResponse.objects.create(
        team=team_support, shortcut="visita", title="Visita", body="Agendamos a visita."
    )
    shared = CannedResponse.objects.create(shortcut="ola", title="Olá", body="Olá, {{nome}}!")
    client = client_for(supervisor)
    url = f"/admin/conversations/cannedresponse/{mine.pk}/change/"
    data = form_data(client.get(url).content.decode(), "cannedresponse_form")
    data["body"] = "Agendamos a visita técnica para {{nome}}."

    assert client.post(url, data).status_code == 302
    history = client.get(f"/admin/conversations/cannedresponse/{mine.pk}/historico/")
    [latest, *_] = history.context["entries"]
    assert latest["actor"] == supervisor.username
    assert any(field == "texto" for field, _old, _new in latest["changes"])

    shared_url = f"/admin/conversations/cannedresponse/{shared.pk}/change/"
    refused = client.post(
        shared_url, {"shortcut": "ola", "title": "Oi", "body": "Oi", "is_active": "on"}
    )
    assert refused.status_code == 403
    shared.refresh_from_db()
    assert shared.title == "Olá"

    elsewhere = client_for(supervisor_elsewhere).get("/admin/conversations/cannedresponse/")
    assert [c.shortcut for c in elsewhere.context["cl"].result_list] == ["ola"]

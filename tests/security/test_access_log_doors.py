"""Every door that shows a customer's personal data writes the personal-data access log
(issue 6: "who opened which customer's conversation, export or media, when, from which IP —
written by the selectors that reveal personal data").

Each test opens a page or API the way staff do (a logged-in client with a verified second
factor, from a known address) and reads the log rows that appeared. Live partials and API
polling repeat the same view every few seconds: within ``ACCESS_LOG_REPEAT_SECONDS`` a repeat
adds no row (the first one stands for the session of reading).
"""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.tests.helpers import login_verified
from compliance.models import AccessLogEntry
from compliance.services import access_log_verify
from conversations.models import Conversation
from conversations.tests.factories import ConversationFactory, CustomerFactory, MessageFactory

pytestmark = pytest.mark.django_db

IP = "203.0.113.50"
Action = AccessLogEntry.Action


@pytest.fixture
def conversation(team_support, agent):
    customer = CustomerFactory(name="Márcia Lima", phone_e164="+5511987650042")
    conversation = ConversationFactory(
        customer=customer,
        team=team_support,
        state=Conversation.State.ASSIGNED,
        assigned_agent=agent,
    )
    MessageFactory(conversation=conversation, text="Olá, estou sem sinal")
    return conversation


def _as(user) -> Client:
    client = Client(REMOTE_ADDR=IP)
    login_verified(client, user)
    return client


def _rows(action: str | None = None):
    rows = AccessLogEntry.objects.order_by("pk")
    return list(rows.filter(action=action) if action else rows)


def test_opening_a_conversation_in_the_console_is_logged_with_who_where_and_team(
    agent, conversation
):
    client = _as(agent)
    assert client.get(f"/console/c/{conversation.pk}/").status_code == 200
    (row,) = _rows()
    assert (row.user, row.username, row.ip) == (agent, agent.username, IP)
    assert (row.action, row.customer_id, row.team_id) == (
        Action.VIEW_CONVERSATION,
        conversation.customer_id,
        conversation.team_id,
    )
    assert (row.object_type, row.object_id) == ("conversation", str(conversation.pk))
    assert access_log_verify() == (1, [])


def test_every_explicit_open_is_logged_but_live_partials_do_not_flood(agent, conversation):
    client = _as(agent)
    client.get(f"/console/c/{conversation.pk}/")
    message = conversation.messages.get()
    for _ in range(3):  # the page refreshes its parts on live events
        assert client.get(f"/console/c/{conversation.pk}/timeline/").status_code == 200
        assert client.get(f"/console/c/{conversation.pk}/sidebar/").status_code == 200
        assert client.get(f"/console/partials/message/{message.pk}/").status_code == 200
    assert len(_rows()) == 1
    client.get(f"/console/c/{conversation.pk}/")  # opened again: a new row
    assert len(_rows()) == 2


def test_a_partial_without_the_page_is_still_logged(agent, conversation, settings):
    """Someone scripting the partials (or the page opened long ago) is recorded too."""
    client = _as(agent)
    assert client.get(f"/console/c/{conversation.pk}/timeline/").status_code == 200
    (row,) = _rows()
    assert row.action == Action.VIEW_CONVERSATION and row.customer_id == conversation.customer_id


def test_api_reads_of_conversations_messages_and_customers_are_logged(agent, conversation):
    client = _as(agent)
    assert client.get(f"/api/v1/conversations/{conversation.pk}/").status_code == 200
    assert client.get(f"/api/v1/conversations/{conversation.pk}/messages/").status_code == 200
    assert client.get(f"/api/v1/customers/{conversation.customer_id}/").status_code == 200
    found = client.get("/api/v1/customers/", {"phone": "(11) 98765-0042"})
    assert found.status_code == 200 and len(found.json()["results"]) == 1
    rows = _rows()
    assert [(r.action, r.object_type) for r in rows] == [
        (Action.API_READ, "conversation"),
        (Action.API_READ, "messages"),
        (Action.VIEW_CUSTOMER, "customer"),
        (Action.SEARCH, "customer"),
    ]
    assert {r.customer_id for r in rows} == {conversation.customer_id}
    assert all(r.ip == IP and r.user == agent for r in rows)


def test_a_token_polling_the_api_writes_one_row_per_window(agent, conversation):
    from accounts.services import api_token_create

    _token, secret = api_token_create(user=agent, name="bi", scope="read", expires_in_days=7)
    client = Client(REMOTE_ADDR=IP, HTTP_AUTHORIZATION=f"Bearer {secret}")
    for _ in range(5):
        assert client.get(f"/api/v1/conversations/{conversation.pk}/messages/").status_code == 200
    (row,) = _rows()
    assert (row.user, row.action, row.customer_id) == (
        agent,
        Action.API_READ,
        conversation.customer_id,
    )


def test_admin_pages_showing_a_customer_log_the_access(supervisor, admin_member, conversation):
    supervisor_client = _as(supervisor)
    customer = conversation.customer
    message = conversation.messages.get()
    assert (
        supervisor_client.get(f"/admin/conversations/customer/{customer.pk}/change/").status_code
        == 200
    )
    assert (
        supervisor_client.get(f"/admin/conversations/message/{message.pk}/change/").status_code
        == 200
    )
    rows = _rows()
    assert [(r.action, r.object_type, r.customer_id) for r in rows] == [
        (Action.VIEW_CUSTOMER, "customer", customer.pk),
        (Action.VIEW_CONVERSATION, "message", customer.pk),
    ]
    assert rows[1].team_id == conversation.team_id


def test_the_contract_page_with_holder_cpf_and_address_is_logged(admin_member):
    from isp.models import Contract

    contract = Contract.objects.create(
        ref="90001", holder_name="Márcia Lima", cpf="52998224725", address="Rua A, 10"
    )
    client = _as(admin_member)
    assert client.get(f"/admin/isp/contract/{contract.pk}/change/").status_code == 200
    (row,) = _rows()
    assert (row.action, row.object_type, row.object_id) == (
        Action.VIEW_CUSTOMER,
        "contract",
        str(contract.pk),
    )
    assert row.user == admin_member and row.ip == IP


def test_a_refused_page_writes_nothing(other_agent, conversation):
    """Another team's agent gets 404 and reveals nothing: no row."""
    client = _as(other_agent)
    assert client.get(f"/console/c/{conversation.pk}/").status_code == 404
    assert client.get(f"/api/v1/conversations/{conversation.pk}/messages/").status_code == 404
    assert _rows() == []


# --- object rules on the admin pages that show customers -------------------------------------


def test_an_agent_sees_in_admin_only_the_customers_and_decisions_of_conversations_they_see(
    agent, other_agent, conversation
):
    """The console's rule holds on /admin/ too: agents hold view_customer and
    view_botdecision, but only for the conversations the console shows them."""
    from bot.models import BotDecision

    decision = BotDecision.objects.create(
        conversation=conversation,
        message=conversation.messages.get(),
        action="answer",
        intent="no_connection",
        transcript="áudio: sou a Márcia, estou sem sinal",
    )
    customer = conversation.customer
    mine, theirs = _as(agent), _as(other_agent)
    assert mine.get(f"/admin/conversations/customer/{customer.pk}/change/").status_code == 200
    assert mine.get(f"/admin/bot/botdecision/{decision.pk}/change/").status_code == 200
    listing = theirs.get("/admin/conversations/customer/")
    assert listing.status_code == 200 and "Márcia" not in listing.content.decode()
    for url in (
        f"/admin/conversations/customer/{customer.pk}/change/",
        f"/admin/bot/botdecision/{decision.pk}/change/",
    ):
        response = theirs.get(url)
        assert response.status_code == 302 and response["Location"] == "/admin/", url
    assert "sou a Márcia" not in theirs.get("/admin/bot/botdecision/").content.decode()
    rows = _rows()
    assert [r.user for r in rows] == [agent, agent]  # only what was shown

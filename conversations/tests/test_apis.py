"""The REST API under /api/v1/: same rules as the console, JSON errors, keyset pages."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from conversations.models import CannedResponse, Conversation, Message
from conversations.tests.factories import ConversationFactory, CustomerFactory, MessageFactory

pytestmark = pytest.mark.django_db


def token_for(user, scope: str = "write") -> str:
    from accounts.services import api_token_create

    _token, secret = api_token_create(user=user, name="teste", scope=scope, expires_in_days=30)
    return secret


class Api:
    def __init__(self, user, scope="write", language="pt-br"):
        self.client = Client()
        self.headers = {"HTTP_AUTHORIZATION": f"Bearer {token_for(user, scope)}"}
        self.headers["HTTP_ACCEPT_LANGUAGE"] = language

    def get(self, url, data=None):
        return self.client.get(url, data, **self.headers)

    def post(self, url, data=None):
        return self.client.post(url, data or {}, content_type="application/json", **self.headers)

    def put(self, url, data=None):
        return self.client.put(url, data or {}, content_type="application/json", **self.headers)


def waiting(team, **kwargs):
    kwargs.setdefault("waiting_since", timezone.now())
    return ConversationFactory(team=team, state="waiting", **kwargs)


def test_anonymous_gets_a_json_401(client):
    response = client.get("/api/v1/conversations/")
    assert response.status_code in (401, 403)
    body = response.json()
    assert set(body) == {"code", "message"}


def test_dpo_gets_a_json_403(dpo):
    response = Api(dpo).get("/api/v1/conversations/")
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


def test_list_waiting_shows_own_team_only(agent, team_support, team_billing):
    mine = waiting(team_support)
    waiting(team_billing)
    response = Api(agent).get("/api/v1/conversations/", {"queue": "waiting"})
    assert response.status_code == 200
    body = response.json()
    assert [c["id"] for c in body["results"]] == [mine.pk]
    assert body["next_cursor"] is None
    assert body["results"][0]["customer"]["phone_masked"].count("•") == 5


def test_list_pages_with_next_cursor(agent, team_support):
    for i in range(7):
        waiting(team_support, waiting_since=timezone.now() - timedelta(minutes=i))
    api = Api(agent)
    first = api.get("/api/v1/conversations/", {"limit": 5}).json()
    second = api.get("/api/v1/conversations/", {"limit": 5, "cursor": first["next_cursor"]}).json()
    ids = [c["id"] for c in first["results"] + second["results"]]
    assert len(ids) == len(set(ids)) == 7
    assert second["next_cursor"] is None


def test_list_filters_and_search(agent, team_support):
    target = waiting(team_support, priority=3, customer=CustomerFactory(name="Zélia Duarte"))
    waiting(team_support)
    api = Api(agent)
    assert [
        c["id"] for c in api.get("/api/v1/conversations/", {"priority": 3}).json()["results"]
    ] == [target.pk]
    assert [
        c["id"] for c in api.get("/api/v1/conversations/", {"q": "zélia"}).json()["results"]
    ] == [target.pk]


def test_agent_cannot_list_all(agent):
    response = Api(agent).get("/api/v1/conversations/", {"queue": "all"})
    assert response.status_code == 403


def test_bad_filters_are_400_with_fields(agent):
    response = Api(agent).get("/api/v1/conversations/", {"queue": "nope", "limit": 5})
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_input"
    assert "queue" in response.json()["fields"]
    bad_cursor = Api(agent).get("/api/v1/conversations/", {"cursor": "xyz"})
    assert bad_cursor.status_code == 400 and bad_cursor.json()["code"] == "invalid_cursor"


def test_detail_of_another_teams_conversation_is_404(agent, team_billing):
    foreign = waiting(team_billing)
    response = Api(agent).get(f"/api/v1/conversations/{foreign.pk}/")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_claim_assign_transfer_close(agent, supervisor, team_support, team_billing):
    conversation = waiting(team_support)
    api = Api(agent)
    claimed = api.post(f"/api/v1/conversations/{conversation.pk}/claim/")
    assert claimed.status_code == 200
    assert claimed.json()["assigned_agent"]["username"] == "agente"

    again = Api(supervisor).post(f"/api/v1/conversations/{conversation.pk}/claim/")
    assert again.status_code == 409 and again.json()["code"] == "already_assigned"

    moved = api.post(
        f"/api/v1/conversations/{conversation.pk}/transfer/",
        {"team_id": team_billing.pk, "note": "boleto"},
    )
    assert moved.status_code == 200 and moved.json()["state"] == "waiting"

    assign = Api(supervisor).post(
        f"/api/v1/conversations/{conversation.pk}/assign/", {"agent_id": str(supervisor.pk)}
    )
    assert assign.status_code == 200

    closed = Api(supervisor).post(
        f"/api/v1/conversations/{conversation.pk}/close/", {"resolution": "resolved"}
    )
    assert closed.status_code == 200 and closed.json()["state"] == "closed"
    twice = Api(supervisor).post(
        f"/api/v1/conversations/{conversation.pk}/close/", {"resolution": "resolved"}
    )
    assert twice.status_code == 409


def test_read_only_token_cannot_act(agent, team_support):
    conversation = waiting(team_support)
    response = Api(agent, scope="read").post(f"/api/v1/conversations/{conversation.pk}/claim/")
    assert response.status_code == 403
    assert set(response.json()) >= {"code", "message"}


def test_send_message_through_the_outbox(agent, team_support):
    conversation = ConversationFactory(team=team_support, state="assigned", assigned_agent=agent)
    original = MessageFactory(conversation=conversation)
    api = Api(agent)
    response = api.post(
        f"/api/v1/conversations/{conversation.pk}/messages/",
        {"text": "Já verifiquei", "reply_to_id": original.pk},
    )
    assert response.status_code == 201
    sent = Message.objects.get(pk=response.json()["id"])
    assert sent.status == "pending" and sent.reply_to == original
    listed = api.get(f"/api/v1/conversations/{conversation.pk}/messages/").json()
    assert [m["id"] for m in listed["results"]] == [sent.pk, original.pk]


def test_send_outside_the_window_is_409_in_english_when_asked(agent, team_support):
    conversation = ConversationFactory(
        team=team_support,
        state="assigned",
        assigned_agent=agent,
        last_customer_message_at=timezone.now() - timedelta(days=2),
    )
    pt = Api(agent).post(f"/api/v1/conversations/{conversation.pk}/messages/", {"text": "oi"})
    assert pt.status_code == 409 and pt.json()["code"] == "window_closed"
    assert "24 horas" in pt.json()["message"]
    en = Api(agent, language="en").post(
        f"/api/v1/conversations/{conversation.pk}/messages/", {"text": "oi"}
    )
    assert en.status_code == 409
    assert "24 hours" in en.json()["message"]


def test_note_via_api(agent, team_support):
    conversation = waiting(team_support)
    response = Api(agent).post(f"/api/v1/conversations/{conversation.pk}/notes/", {"text": "ok"})
    assert response.status_code == 201


def test_customer_lookup_and_detail(agent, team_support, team_billing):
    customer = CustomerFactory(
        wa_id="5511955554444", phone_e164="+5511955554444", cpf="98765432100"
    )
    conversation = waiting(team_support, customer=customer)
    hidden = CustomerFactory(wa_id="5511933332222", phone_e164="+5511933332222")
    waiting(team_billing, customer=hidden)
    api = Api(agent)
    by_phone = api.get("/api/v1/customers/", {"phone": "(11) 95555-4444"}).json()["results"]
    assert [c["id"] for c in by_phone] == [customer.pk]
    by_protocol = api.get("/api/v1/customers/", {"protocol": conversation.protocol}).json()
    assert [c["id"] for c in by_protocol["results"]] == [customer.pk]
    assert api.get("/api/v1/customers/", {"phone": "11933332222"}).json()["results"] == []
    by_cpf = api.get("/api/v1/customers/", {"cpf": "987.654.321-00"}).json()["results"]
    assert [c["id"] for c in by_cpf] == [customer.pk]  # through the CPF's blind index
    assert api.get("/api/v1/customers/", {"cpf": "98765432101"}).json()["results"] == []
    detail = api.get(f"/api/v1/customers/{customer.pk}/").json()
    assert detail["customer"]["cpf_masked"] == "•••.654.•••-00"
    assert [c["protocol"] for c in detail["conversations"]] == [conversation.protocol]
    assert api.get(f"/api/v1/customers/{hidden.pk}/").status_code == 404
    assert api.get("/api/v1/customers/").status_code == 400


def test_canned_responses_rendered_for_a_conversation(agent, team_support):
    conversation = waiting(team_support, customer=CustomerFactory(name="Paulo Reis"))
    CannedResponse.objects.create(shortcut="oi", title="Oi", body="Oi {{nome}}")
    body = Api(agent).get("/api/v1/canned-responses/", {"conversation": conversation.pk}).json()
    assert body["results"][0]["rendered"] == "Oi Paulo"


def test_my_presence(agent):
    api = Api(agent)
    assert api.get("/api/v1/me/presence/").json()["presence"] == "online"
    assert api.put("/api/v1/me/presence/", {"presence": "away"}).json()["presence"] == "away"
    agent.refresh_from_db()
    assert agent.presence == "away"
    assert api.put("/api/v1/me/presence/", {"presence": "dormindo"}).status_code == 400


def test_schema_and_docs_are_served_to_the_apis_users_only(client, agent, dpo):
    assert client.get("/api/v1/schema/").status_code == 401
    assert client.get("/api/v1/docs/").status_code == 401
    client.force_login(agent)
    schema = client.get("/api/v1/schema/")
    assert schema.status_code == 200
    assert b"/api/v1/conversations/{id}/transfer/" in schema.content
    docs = client.get("/api/v1/docs/")
    assert docs.status_code == 200
    assert b"cdn" not in docs.content.lower()
    client.force_login(dpo)
    assert client.get("/api/v1/schema/").status_code == 403


def test_supervisor_sees_the_all_queue(supervisor, agent, team_support):
    conversation = ConversationFactory(team=team_support, state="assigned", assigned_agent=agent)
    results = Api(supervisor).get("/api/v1/conversations/", {"queue": "all"}).json()["results"]
    assert conversation.pk in [c["id"] for c in results]


def test_transfer_to_an_agent_of_another_team_is_refused(agent, other_agent, team_support):
    conversation = ConversationFactory(team=team_support, state="assigned", assigned_agent=agent)
    response = Api(agent).post(
        f"/api/v1/conversations/{conversation.pk}/transfer/", {"agent_id": str(other_agent.pk)}
    )
    assert response.status_code == 403
    assert response.json()["code"] == "agent_not_allowed"
    assert Conversation.objects.get(pk=conversation.pk).assigned_agent == agent


def test_unknown_agent_is_400(supervisor, team_support):
    conversation = waiting(team_support)
    response = Api(supervisor).post(
        f"/api/v1/conversations/{conversation.pk}/assign/",
        {"agent_id": "00000000-0000-0000-0000-000000000000"},
    )
    assert response.status_code == 400

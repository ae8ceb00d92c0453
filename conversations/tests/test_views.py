"""The console pages and actions, as an agent or supervisor would use them."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Role
from accounts.tests.factories import UserFactory
from conversations import hooks, services
from conversations.models import (
    CannedResponse,
    Conversation,
    ConversationEvent,
    ConversationNote,
    Message,
)
from conversations.tests.factories import ConversationFactory, CustomerFactory, MessageFactory

pytestmark = pytest.mark.django_db
FETCH = {"HTTP_X_REQUESTED_WITH": "fetch"}


def waiting(team, **kwargs) -> Conversation:
    kwargs.setdefault("waiting_since", timezone.now())
    return ConversationFactory(team=team, state=Conversation.State.WAITING, **kwargs)


def assigned(team, agent, **kwargs) -> Conversation:
    return ConversationFactory(
        team=team, state=Conversation.State.ASSIGNED, assigned_agent=agent, **kwargs
    )


# --- access -------------------------------------------------------------------------------------


def test_anonymous_is_sent_to_the_login_page(client):
    response = client.get("/console/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    assert "next=/console/" in response["Location"]


def test_dpo_is_refused(console_client, dpo):
    assert console_client(dpo).get("/console/").status_code == 403


def test_user_without_role_is_refused(console_client, db):
    nobody = UserFactory(username="semfuncao")
    assert console_client(nobody).get("/console/").status_code == 403


def test_console_login_url_goes_to_the_project_login(client):
    response = client.get("/console/login/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


# --- inbox --------------------------------------------------------------------------------------


def test_waiting_queue_shows_own_team_and_not_other_team(
    console_client, agent, team_support, team_billing
):
    mine = waiting(team_support, customer=CustomerFactory(name="Cliente Suporte"))
    waiting(team_billing, customer=CustomerFactory(name="Cliente Financeiro"))
    response = console_client(agent).get("/console/?queue=waiting")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Cliente Suporte" in html
    assert mine.protocol in html
    assert "Cliente Financeiro" not in html


def test_waiting_queue_orders_by_priority_then_oldest(console_client, agent, team_support):
    now = timezone.now()
    old_normal = waiting(team_support, waiting_since=now - timedelta(minutes=30))
    new_urgent = waiting(
        team_support,
        waiting_since=now - timedelta(minutes=1),
        priority=Conversation.Priority.URGENT,
    )
    older_normal = waiting(team_support, waiting_since=now - timedelta(minutes=50))
    html = console_client(agent).get("/console/?queue=waiting").content.decode()
    positions = [html.index(f'id="row-{c.pk}"') for c in (new_urgent, older_normal, old_normal)]
    assert positions == sorted(positions)


def test_row_shows_preview_unread_priority_and_window(console_client, agent, team_support):
    conversation = waiting(team_support, priority=Conversation.Priority.HIGH)
    services.message_record_inbound(
        conversation=conversation,
        wamid="wamid.preview",
        type="text",
        timestamp=timezone.now(),
        text="A fibra rompeu na rua",
    )
    html = console_client(agent).get("/console/").content.decode()
    assert "A fibra rompeu na rua" in html
    assert 'class="unread"' in html
    assert "Alta" in html
    assert "data-expires=" in html


def test_agent_asking_for_the_all_queue_gets_waiting(console_client, agent):
    response = console_client(agent).get("/console/?queue=all")
    assert response.status_code == 200
    assert 'data-queue="waiting"' in response.content.decode()


def test_supervisor_has_the_all_queue_and_the_presence_board(
    console_client, supervisor, agent, team_support
):
    assigned(team_support, agent)
    html = console_client(supervisor).get("/console/?queue=all").content.decode()
    assert 'data-queue="all"' in html
    assert "Equipe agora" in html
    assert "agente" in html


@pytest.mark.parametrize("field", ["protocol", "name", "phone"])
def test_search_by_protocol_name_or_phone(console_client, agent, team_support, field):
    customer = CustomerFactory(
        name="Joana Prado", wa_id="5511912345678", phone_e164="+5511912345678"
    )
    target = ConversationFactory(customer=customer, team=team_support)
    ConversationFactory(team=team_support, customer=CustomerFactory(name="Outro Nome"))
    term = {"protocol": target.protocol, "name": "joana", "phone": "11 91234-5678"}[field]
    html = console_client(agent).get("/console/", {"s": term}).content.decode()
    assert f'id="row-{target.pk}"' in html
    assert "Outro Nome" not in html


def test_search_does_not_find_other_teams_conversations(console_client, agent, team_billing):
    foreign = ConversationFactory(team=team_billing, customer=CustomerFactory(name="Sigilosa"))
    html = console_client(agent).get("/console/", {"s": foreign.protocol}).content.decode()
    assert "Sigilosa" not in html


def test_waiting_queue_pages_with_a_cursor(console_client, agent, team_support):
    now = timezone.now()
    rows = [waiting(team_support, waiting_since=now - timedelta(minutes=i)) for i in range(55)]
    client = console_client(agent)
    first = client.get("/console/partials/list/?queue=waiting")
    html = first.content.decode()
    assert html.count('class="row ') == 50
    assert "waiting=55" in first["X-Queue-Counts"]
    cursor = html.split('data-more="')[1].split('"')[0]
    second = client.get("/console/partials/list/", {"queue": "waiting", "cursor": cursor})
    html2 = second.content.decode()
    assert html2.count('class="row ') == 5
    oldest_first = sorted(rows, key=lambda c: c.waiting_since)
    assert f'id="row-{oldest_first[0].pk}"' in html
    assert f'id="row-{oldest_first[-1].pk}"' in html2
    assert "data-more" not in html2


def test_tampered_cursor_is_a_400(console_client, agent):
    response = console_client(agent).get("/console/partials/list/?queue=waiting&cursor=abc")
    assert response.status_code == 400


def test_queue_counts_are_capped(console_client, agent, team_support):
    now = timezone.now()
    Conversation.objects.bulk_create(
        [
            Conversation(
                customer=CustomerFactory(),
                protocol=f"2026010100{i:04d}",
                team=team_support,
                state=Conversation.State.WAITING,
                waiting_since=now,
            )
            for i in range(105)
        ]
    )
    html = console_client(agent).get("/console/").content.decode()
    assert "99+" in html


def _inbox_queries(client) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get("/console/?queue=waiting").status_code == 200
    return len(ctx)


def test_inbox_query_count_does_not_grow_with_rows(
    console_client, agent, team_support, django_assert_num_queries
):
    client = console_client(agent)
    for _ in range(2):
        c = waiting(team_support)
        MessageFactory(conversation=c)
    baseline = _inbox_queries(client)
    for _ in range(30):
        c = waiting(team_support)
        services.message_record_inbound(
            conversation=c,
            wamid=f"wamid.q{c.pk}",
            type="text",
            timestamp=timezone.now(),
            text="oi",
        )
    with django_assert_num_queries(baseline):
        assert client.get("/console/?queue=waiting").status_code == 200


# --- conversation page --------------------------------------------------------------------------


def _rich_conversation(team, agent) -> Conversation:
    customer = CustomerFactory(name="Márcia Lima", cpf="12345678901", contract_ref="CT-778")
    conversation = assigned(team, agent, customer=customer)
    m = MessageFactory(conversation=conversation, text="Olá, estou sem sinal")
    MessageFactory(
        conversation=conversation,
        type="image",
        text="foto do roteador",
        media_mime_type="image/jpeg",
        media_file="media/2026/01/x.jpg",
    )
    MessageFactory(conversation=conversation, type="audio", media_file="media/2026/01/a.ogg")
    MessageFactory(
        conversation=conversation,
        type="document",
        media_filename="boleto.pdf",
        media_file="media/2026/01/b.pdf",
        media_size=2048,
    )
    MessageFactory(
        conversation=conversation,
        type="location",
        payload={"location": {"latitude": -23.55, "longitude": -46.63, "name": "Casa"}},
    )
    MessageFactory(
        conversation=conversation,
        type="reaction",
        payload={"reaction": {"message_id": m.wamid, "emoji": "👍"}},
    )
    MessageFactory(conversation=conversation, text="respondendo", reply_to=m, context_wamid=m.wamid)
    Message.objects.create(
        conversation=conversation,
        direction="out",
        sender_kind="agent",
        sender_user=agent,
        text="Vou verificar",
        status="failed",
        wamid="wamid.fail",
        error_code=131026,
        error_title="Message undeliverable",
    )
    ConversationEvent.objects.create(
        conversation=conversation,
        kind="bot_decision",
        data={
            "intent": "sem_conexao",
            "sentiment": "negativo",
            "escalated": True,
            "escalation_reason": "pediu humano",
        },
    )
    ConversationNote.objects.create(conversation=conversation, author=agent, text="Cliente VIP")
    return conversation


def test_conversation_page_renders_every_kind_of_item(console_client, agent, team_support):
    conversation = _rich_conversation(team_support, agent)
    response = console_client(agent).get(f"/console/c/{conversation.pk}/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Olá, estou sem sinal" in html
    assert f'src="/media/{conversation.messages.get(type="image").pk}/"' in html
    assert "<audio controls" in html
    assert "boleto.pdf" in html and "download" in html
    assert "openstreetmap.org" in html
    assert 'class="reaction"' in html and "👍" in html
    assert 'class="quoted"' in html
    assert "Message undeliverable" in html and "131026" in html
    assert "intenção: sem_conexao" in html and "escalou: pediu humano" in html
    assert "Cliente VIP" in html
    assert "•••.456.•••-01" in html  # CPF masked
    assert "12345678901" not in html
    assert "CT-778" in html


def test_conversation_page_lists_previous_conversations(console_client, agent, team_support):
    conversation = assigned(team_support, agent)
    old = ConversationFactory(
        customer=conversation.customer,
        team=team_support,
        state="closed",
        closed_at=timezone.now(),
        resolution="resolved",
    )
    html = console_client(agent).get(f"/console/c/{conversation.pk}/").content.decode()
    assert old.protocol in html


def test_other_teams_conversation_is_404(console_client, agent, team_billing):
    foreign = waiting(team_billing)
    assert console_client(agent).get(f"/console/c/{foreign.pk}/").status_code == 404


def test_conversation_page_query_count_does_not_grow_with_messages(
    console_client, agent, team_support, django_assert_num_queries
):
    conversation = _rich_conversation(team_support, agent)
    client = console_client(agent)
    with CaptureQueriesContext(connection) as ctx:
        client.get(f"/console/c/{conversation.pk}/")
    baseline = len(ctx)
    for i in range(40):
        MessageFactory(conversation=conversation, text=f"mensagem {i}")
        ConversationEvent.objects.create(conversation=conversation, kind="priority", actor=agent)
        ConversationNote.objects.create(conversation=conversation, author=agent, text="n")
    with django_assert_num_queries(baseline):
        assert client.get(f"/console/c/{conversation.pk}/").status_code == 200


def test_long_history_shows_the_newest_and_loads_earlier(console_client, agent, team_support):
    conversation = assigned(team_support, agent)
    start = timezone.now() - timedelta(hours=3)
    for i in range(130):
        MessageFactory(
            conversation=conversation,
            text=f"linha {i:03d}",
            created_at=start + timedelta(seconds=i),
        )
    client = console_client(agent)
    html = client.get(f"/console/c/{conversation.pk}/").content.decode()
    assert "linha 129" in html and "linha 029" not in html
    cursor = html.split('data-earlier="')[1].split('"')[0]
    earlier = client.get(
        f"/console/c/{conversation.pk}/timeline/", {"before": cursor}
    ).content.decode()
    assert "linha 029" in earlier and "linha 129" not in earlier


def test_opening_as_the_assigned_agent_clears_unread(console_client, agent, team_support):
    conversation = assigned(team_support, agent, unread_count=3)
    console_client(agent).get(f"/console/c/{conversation.pk}/")
    conversation.refresh_from_db()
    assert conversation.unread_count == 0


def test_opening_as_someone_else_keeps_unread(console_client, agent, supervisor, team_support):
    conversation = assigned(team_support, agent, unread_count=3)
    console_client(supervisor).get(f"/console/c/{conversation.pk}/")
    conversation.refresh_from_db()
    assert conversation.unread_count == 3


def test_canned_responses_are_filled_for_the_conversation(
    console_client, agent, team_support, team_billing
):
    customer = CustomerFactory(name="Roberta Campos")
    conversation = assigned(team_support, agent, customer=customer)
    CannedResponse.objects.create(
        shortcut="ola", title="Saudação", body="Olá, {{nome}}! Protocolo {{protocolo}}."
    )
    CannedResponse.objects.create(
        team=team_support, shortcut="reinicio", title="Reiniciar", body="x"
    )
    CannedResponse.objects.create(team=team_billing, shortcut="boleto", title="Boleto", body="y")
    html = console_client(agent).get(f"/console/c/{conversation.pk}/").content.decode()
    raw = html.split('id="canned-data" type="application/json">')[1].split("</script>")[0]
    canned = {item["shortcut"]: item["text"] for item in json.loads(raw)}
    assert canned["ola"] == f"Olá, Roberta! Protocolo {conversation.protocol}."
    assert "reinicio" in canned
    assert "boleto" not in canned


# --- actions ------------------------------------------------------------------------------------


def test_claim_assigns_to_me(console_client, agent, team_support):
    conversation = waiting(team_support)
    response = console_client(agent).post(f"/console/c/{conversation.pk}/claim/", **FETCH)
    assert response.status_code == 200
    conversation.refresh_from_db()
    assert conversation.state == "assigned" and conversation.assigned_agent == agent
    event = conversation.events.filter(kind="assigned").get()
    assert event.data["reason"] == "claim"


def test_claim_of_a_conversation_already_taken_is_409(console_client, agent, team_support):
    colleague = UserFactory(role=Role.AGENT, teams=[team_support])
    conversation = assigned(team_support, colleague)
    response = console_client(agent).post(f"/console/c/{conversation.pk}/claim/", **FETCH)
    assert response.status_code == 409
    assert response.json()["code"] == "already_assigned"


def test_claim_of_another_teams_conversation_is_404(console_client, agent, team_billing):
    conversation = waiting(team_billing)
    response = console_client(agent).post(f"/console/c/{conversation.pk}/claim/", **FETCH)
    assert response.status_code == 404
    conversation.refresh_from_db()
    assert conversation.state == "waiting"


def test_claim_of_a_closed_conversation_explains_why(console_client, agent, team_support):
    conversation = ConversationFactory(team=team_support, state="closed", closed_at=timezone.now())
    response = console_client(agent).post(f"/console/c/{conversation.pk}/claim/", **FETCH)
    assert response.status_code == 409
    assert response.json() == {
        "code": "invalid_transition",
        "message": "A conversa já foi encerrada.",
    }


def test_plain_form_post_error_renders_the_page_with_the_message(
    console_client, agent, team_support
):
    conversation = ConversationFactory(team=team_support, state="closed", closed_at=timezone.now())
    response = console_client(agent).post(f"/console/c/{conversation.pk}/claim/")
    assert response.status_code == 409
    assert "A conversa já foi encerrada." in response.content.decode()


def test_plain_form_post_success_redirects_back(console_client, agent, team_support):
    conversation = waiting(team_support)
    response = console_client(agent).post(f"/console/c/{conversation.pk}/claim/")
    assert response.status_code == 302
    assert response["Location"] == f"/console/c/{conversation.pk}/"


def test_actions_need_csrf(client, agent, team_support):
    from conversations.tests.conftest import login

    client.handler.enforce_csrf_checks = True
    login(client, agent)
    conversation = waiting(team_support)
    assert client.post(f"/console/c/{conversation.pk}/claim/", **FETCH).status_code == 403


def test_reply_goes_to_the_outbox(console_client, agent, team_support):
    conversation = assigned(team_support, agent)
    response = console_client(agent).post(
        f"/console/c/{conversation.pk}/reply/", {"text": "Pode reiniciar o roteador?"}, **FETCH
    )
    assert response.status_code == 200
    message = Message.objects.get(pk=response.json()["message"])
    assert message.direction == "out" and message.status == "pending"
    assert message.text == "Pode reiniciar o roteador?"
    assert message.sender_user == agent
    conversation.refresh_from_db()
    assert conversation.last_message == message
    assert conversation.first_response_at is not None


def test_reply_to_a_specific_message(console_client, agent, team_support):
    conversation = assigned(team_support, agent)
    original = MessageFactory(conversation=conversation)
    response = console_client(agent).post(
        f"/console/c/{conversation.pk}/reply/",
        {"text": "Sobre isso:", "reply_to": original.pk},
        **FETCH,
    )
    assert response.status_code == 200
    sent = Message.objects.get(pk=response.json()["message"])
    assert sent.reply_to == original and sent.context_wamid == original.wamid


def test_reply_to_a_message_of_another_conversation_is_refused(console_client, agent, team_support):
    conversation = assigned(team_support, agent)
    elsewhere = MessageFactory()
    response = console_client(agent).post(
        f"/console/c/{conversation.pk}/reply/", {"text": "x", "reply_to": elsewhere.pk}, **FETCH
    )
    assert response.status_code == 400
    assert not Message.objects.filter(direction="out").exists()


def test_reply_with_an_attachment(console_client, agent, team_support, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    conversation = assigned(team_support, agent)
    upload = SimpleUploadedFile("contrato.pdf", b"%PDF-1.4 test", content_type="application/pdf")
    response = console_client(agent).post(
        f"/console/c/{conversation.pk}/reply/", {"text": "Segue", "attachment": upload}, **FETCH
    )
    assert response.status_code == 200
    sent = Message.objects.get(pk=response.json()["message"])
    assert sent.type == "document" and sent.media_filename == "contrato.pdf"
    assert sent.media_file.read() == b"%PDF-1.4 test"


def test_reply_with_an_unsupported_attachment_is_refused(
    console_client, agent, team_support, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path
    conversation = assigned(team_support, agent)
    upload = SimpleUploadedFile("x.exe", b"MZ", content_type="application/x-msdownload")
    response = console_client(agent).post(
        f"/console/c/{conversation.pk}/reply/", {"attachment": upload}, **FETCH
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_input"


def test_reply_before_claiming_is_refused(console_client, agent, team_support):
    conversation = waiting(team_support)
    response = console_client(agent).post(
        f"/console/c/{conversation.pk}/reply/", {"text": "oi"}, **FETCH
    )
    assert response.status_code == 409
    assert "Assuma" in response.json()["message"]


def test_reply_to_a_colleagues_conversation_is_forbidden(console_client, agent, team_support):
    colleague = UserFactory(role=Role.AGENT, teams=[team_support])
    conversation = assigned(team_support, colleague)
    response = console_client(agent).post(
        f"/console/c/{conversation.pk}/reply/", {"text": "oi"}, **FETCH
    )
    assert response.status_code == 403


def test_reply_outside_the_window_is_refused_and_templates_are_offered(
    console_client, agent, team_support, monkeypatch
):
    conversation = assigned(
        team_support, agent, last_customer_message_at=timezone.now() - timedelta(hours=25)
    )
    client = console_client(agent)
    response = client.post(f"/console/c/{conversation.pk}/reply/", {"text": "oi"}, **FETCH)
    assert response.status_code == 409
    assert response.json()["code"] == "window_closed"
    from conversations.hooks import ApprovedTemplate

    # The provider the channel app registers; here one approved template of our own.
    monkeypatch.setattr(
        hooks,
        "_template_provider",
        lambda: [ApprovedTemplate(7, "retomar_contato", "pt_BR", "Olá {{1}}, podemos seguir?", 1)],
    )
    html = client.get(f"/console/c/{conversation.pk}/").content.decode()
    assert 'data-mode="template"' in html and "retomar_contato" in html
    sent = client.post(
        f"/console/c/{conversation.pk}/template/",
        {"template": 7, "param_1": "Ana"},
        **FETCH,
    )
    assert sent.status_code == 200
    message = Message.objects.get(direction="out")
    assert message.type == "template"
    assert message.text == "Olá Ana, podemos seguir?"
    assert message.payload["template"]["name"] == "retomar_contato"
    assert message.payload["template"]["components"][0]["parameters"] == [
        {"type": "text", "text": "Ana"}
    ]


def test_private_note_is_kept_and_never_sent(console_client, agent, team_support):
    conversation = waiting(team_support)
    response = console_client(agent).post(
        f"/console/c/{conversation.pk}/note/", {"text": "Ligou 3x hoje"}, **FETCH
    )
    assert response.status_code == 200
    assert ConversationNote.objects.get().text == "Ligou 3x hoje"
    assert not Message.objects.exists()


def test_transfer_to_another_team_with_a_note(
    console_client, agent, other_agent, team_support, team_billing
):
    conversation = assigned(team_support, agent)
    client = console_client(agent)
    response = client.post(
        f"/console/c/{conversation.pk}/transfer/",
        {"team": team_billing.pk, "note": "Assunto de boleto"},
        **FETCH,
    )
    assert response.status_code == 200
    conversation.refresh_from_db()
    assert conversation.team == team_billing
    assert conversation.state == "waiting" and conversation.assigned_agent is None
    event = conversation.events.get(kind="transferred")
    assert event.data["to_team_id"] == team_billing.pk
    assert ConversationNote.objects.get(pk=event.data["note_id"]).text == "Assunto de boleto"
    # It left the support team: the agent no longer sees it, billing does.
    assert client.get(f"/console/c/{conversation.pk}/").status_code == 404


def test_transfer_without_a_target_is_400(console_client, agent, team_support):
    conversation = assigned(team_support, agent)
    response = console_client(agent).post(f"/console/c/{conversation.pk}/transfer/", {}, **FETCH)
    assert response.status_code == 400


def test_transfer_by_someone_not_handling_it_is_403(console_client, agent, team_support):
    conversation = waiting(team_support)
    response = console_client(agent).post(
        f"/console/c/{conversation.pk}/transfer/", {"team": team_support.pk}, **FETCH
    )
    assert response.status_code == 403


def test_supervisor_assigns_to_an_agent(console_client, supervisor, agent, team_support):
    conversation = waiting(team_support)
    response = console_client(supervisor).post(
        f"/console/c/{conversation.pk}/assign/", {"agent": agent.pk}, **FETCH
    )
    assert response.status_code == 200
    conversation.refresh_from_db()
    assert conversation.assigned_agent == agent
    assert conversation.events.get(kind="assigned").data["reason"] == "assigned_by_supervisor"


def test_agent_cannot_assign_to_a_colleague(console_client, agent, team_support):
    colleague = UserFactory(role=Role.AGENT, teams=[team_support])
    conversation = waiting(team_support)
    response = console_client(agent).post(
        f"/console/c/{conversation.pk}/assign/", {"agent": colleague.pk}, **FETCH
    )
    assert response.status_code == 403


def test_assign_to_an_agent_of_another_team_is_refused(
    console_client, supervisor, other_agent, team_support
):
    conversation = waiting(team_support)
    response = console_client(supervisor).post(
        f"/console/c/{conversation.pk}/assign/", {"agent": other_agent.pk}, **FETCH
    )
    assert response.status_code == 403
    assert response.json()["code"] == "agent_not_allowed"


def test_set_priority(console_client, agent, team_support):
    conversation = waiting(team_support)
    response = console_client(agent).post(
        f"/console/c/{conversation.pk}/priority/", {"priority": 3}, **FETCH
    )
    assert response.status_code == 200
    conversation.refresh_from_db()
    assert conversation.priority == 3


def test_close_sends_the_csat_survey_inside_the_window(console_client, agent, team_support):
    conversation = assigned(team_support, agent)
    response = console_client(agent).post(
        f"/console/c/{conversation.pk}/close/", {"resolution": "resolved", "note": "ok"}, **FETCH
    )
    assert response.status_code == 200
    conversation.refresh_from_db()
    assert conversation.state == "closed" and conversation.resolution == "resolved"
    survey = Message.objects.get(direction="out")
    assert survey.type == "interactive"
    rows = survey.payload["interactive"]["action"]["sections"][0]["rows"]
    assert [r["id"] for r in rows] == [f"csat:{conversation.pk}:{n}" for n in (5, 4, 3, 2, 1)]
    assert all(len(r["title"]) <= 24 for r in rows)
    assert conversation.protocol in survey.text


def test_close_outside_the_window_sends_no_survey(console_client, agent, team_support):
    conversation = assigned(
        team_support, agent, last_customer_message_at=timezone.now() - timedelta(days=2)
    )
    response = console_client(agent).post(
        f"/console/c/{conversation.pk}/close/", {"resolution": "no_response"}, **FETCH
    )
    assert response.status_code == 200
    assert not Message.objects.exists()


def test_closing_twice_is_a_clear_409(console_client, agent, team_support):
    conversation = assigned(team_support, agent)
    client = console_client(agent)
    client.post(f"/console/c/{conversation.pk}/close/", {"resolution": "resolved"}, **FETCH)
    again = client.post(f"/console/c/{conversation.pk}/close/", {"resolution": "resolved"}, **FETCH)
    assert again.status_code == 409
    assert again.json()["message"] == "A conversa já foi encerrada."


def test_agent_cannot_close_a_colleagues_conversation(console_client, agent, team_support):
    colleague = UserFactory(role=Role.AGENT, teams=[team_support])
    conversation = assigned(team_support, colleague)
    response = console_client(agent).post(
        f"/console/c/{conversation.pk}/close/", {"resolution": "resolved"}, **FETCH
    )
    assert response.status_code == 403
    conversation.refresh_from_db()
    assert conversation.state == "assigned"


def test_dpo_cannot_act(console_client, dpo, team_support):
    conversation = waiting(team_support)
    assert (
        console_client(dpo).post(f"/console/c/{conversation.pk}/claim/", **FETCH).status_code == 403
    )


# --- partials -----------------------------------------------------------------------------------


def test_row_partial_answers_whether_the_row_belongs_to_the_queue(
    console_client, agent, team_support, team_billing
):
    conversation = waiting(team_support)
    client = console_client(agent)
    assert client.get(f"/console/partials/row/{conversation.pk}/?queue=waiting").status_code == 200
    assert client.get(f"/console/partials/row/{conversation.pk}/?queue=mine").status_code == 204
    foreign = waiting(team_billing)
    assert client.get(f"/console/partials/row/{foreign.pk}/?queue=waiting").status_code == 404


def test_message_partial_shows_the_new_tick(console_client, agent, team_support):
    conversation = assigned(team_support, agent)
    message = services.message_record_outbound(
        conversation=conversation, sender_kind="agent", sender_user=agent, text="oi"
    )
    services.message_mark_sent(message=message, wamid="wamid.tick")
    services.message_update_delivery(wamid="wamid.tick", status="delivered")
    html = console_client(agent).get(f"/console/partials/message/{message.pk}/").content.decode()
    assert "ticks-delivered" in html


def test_message_partial_of_another_team_is_404(console_client, agent, team_billing):
    message = MessageFactory(conversation=waiting(team_billing))
    assert console_client(agent).get(f"/console/partials/message/{message.pk}/").status_code == 404


def test_presence_partial_is_for_supervisors(console_client, agent, supervisor):
    assert console_client(agent).get("/console/partials/presence/").status_code == 403


def test_panel_partial_reflects_the_reply_mode(console_client, agent, team_support):
    conversation = waiting(team_support)
    client = console_client(agent)
    assert (
        'data-mode="claim"' in client.get(f"/console/c/{conversation.pk}/panel/").content.decode()
    )
    client.post(f"/console/c/{conversation.pk}/claim/", **FETCH)
    assert 'data-mode="free"' in client.get(f"/console/c/{conversation.pk}/panel/").content.decode()


def test_timeline_since_returns_only_new_items(console_client, agent, team_support):
    conversation = assigned(team_support, agent)
    old = MessageFactory(
        conversation=conversation, text="antiga", created_at=timezone.now() - timedelta(hours=1)
    )
    new = MessageFactory(conversation=conversation, text="nova")
    html = (
        console_client(agent)
        .get(f"/console/c/{conversation.pk}/timeline/", {"since": new.created_at.isoformat()})
        .content.decode()
    )
    assert f'id="msg-{new.pk}"' in html and f'id="msg-{old.pk}"' not in html


def test_pages_have_no_inline_scripts(console_client, agent, team_support):
    conversation = assigned(team_support, agent)
    client = console_client(agent)
    for url in ("/console/", f"/console/c/{conversation.pk}/"):
        html = client.get(url).content.decode()
        scripts = html.split("<script")[1:]
        for script in scripts:
            head = script.split(">", 1)[0]
            assert "src=" in head or 'type="application/json"' in head, head
        assert " onclick=" not in html and " onchange=" not in html and ' style="' not in html

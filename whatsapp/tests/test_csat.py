"""CSAT end to end: the console closes → the real client sends the survey to the Graph
simulator over loopback → the customer's signed webhook answers → the closed conversation
records the rating and the comment, opens nothing and wakes no bot."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.utils import timezone

from accounts.models import Role
from accounts.tests.factories import UserFactory
from bot.models import BotDecision
from conftest import on_postgres
from conversations import csat, services
from conversations.models import Conversation, Message
from conversations.tests.conftest import login, role_groups_survive_flush  # noqa: F401
from conversations.tests.factories import ConversationFactory, CustomerFactory
from whatsapp import inbound
from whatsapp.models import WebhookEvent
from whatsapp.tasks.outbound import deliver_outbound_message
from whatsapp.testing import envelope, interactive_reply, signed_post, text_message
from whatsapp.tests.loopback import *  # noqa: F403

pytestmark = pytest.mark.django_db
WA_ID = "5511987654321"
FETCH = {"HTTP_X_REQUESTED_WITH": "fetch"}


@pytest.fixture
def conversation(customer, agent, team_support):
    return ConversationFactory(
        customer=customer,
        team=team_support,
        state=Conversation.State.ASSIGNED,
        assigned_agent=agent,
        last_customer_message_at=timezone.now() - timedelta(minutes=3),
    )


@pytest.fixture
def client(client, agent):
    """The test client, logged in as the conversation's agent (the webhook ignores it)."""
    login(client, agent)
    return client


def close_in_console(client, agent, conversation, capture, resolution="resolved"):
    with capture(execute=True):  # the outbox delivers after commit, as in production
        return client.post(
            f"/console/c/{conversation.pk}/close/", {"resolution": resolution}, **FETCH
        )


def webhook(client, capture, *messages) -> None:
    """Meta posts the customer's messages (signed); the worker processes them."""
    response = signed_post(client, envelope(messages=list(messages)))
    assert response.status_code == 200
    with capture(execute=True):
        for event_id in WebhookEvent.objects.filter(status="received").values_list("pk", flat=True):
            inbound.event_process(event_id=event_id)


def surveys(graph) -> list[dict]:
    return [
        body
        for body in graph.sent()
        if body.get("type") == "interactive" and body["interactive"]["type"] == "list"
    ]


def texts(graph) -> list[str]:
    return [body["text"]["body"] for body in graph.sent() if body.get("type") == "text"]


def test_closing_sends_the_survey_as_a_list_message_with_the_bearer_token(
    graph, client, agent, conversation, django_capture_on_commit_callbacks
):
    response = close_in_console(client, agent, conversation, django_capture_on_commit_callbacks)

    assert response.status_code == 200
    (request,) = [r for r in graph.requests if r.path.endswith("/messages")]
    assert request.authorization == "Bearer dev-access-token"
    assert request.accepted
    body = request.body
    assert body["to"] == "+5511987654321" and body["type"] == "interactive"
    survey = body["interactive"]
    assert survey["type"] == "list"
    rows = survey["action"]["sections"][0]["rows"]
    assert [r["id"] for r in rows] == [f"csat:{conversation.pk}:{n}" for n in (5, 4, 3, 2, 1)]
    assert conversation.protocol in survey["body"]["text"]
    conversation.refresh_from_db()
    assert conversation.state == "closed" and conversation.csat_requested_at is not None
    # the protocol is sent again with its dates of registration and conclusion (RGC 765 art. 9)
    opened, closed = (
        timezone.localtime(moment).strftime("%d/%m/%Y às %H:%M")
        for moment in (conversation.opened_at, conversation.closed_at)
    )
    assert f"registrado em {opened}" in survey["body"]["text"]
    assert f"encerrado em {closed}" in survey["body"]["text"]


def test_the_rating_and_the_comment_are_recorded_on_the_closed_conversation(
    graph, client, agent, conversation, django_capture_on_commit_callbacks
):
    close_in_console(client, agent, conversation, django_capture_on_commit_callbacks)
    rated_at = int(time.time()) - 60

    webhook(
        client,
        django_capture_on_commit_callbacks,
        interactive_reply(
            reply_id=f"csat:{conversation.pk}:4", title="4 · Bom", timestamp=rated_at
        ),
    )

    conversation.refresh_from_db()
    assert conversation.csat_score == 4
    assert conversation.csat_answered_at == datetime.fromtimestamp(rated_at, tz=UTC)
    assert Conversation.objects.filter(customer=conversation.customer).count() == 1
    assert not BotDecision.objects.exists()  # the bot was not woken
    assert "comentário" in texts(graph)[-1]  # thanked and invited to comment

    webhook(
        client,
        django_capture_on_commit_callbacks,
        text_message(text="A Maria foi muito atenciosa, obrigado!", timestamp=rated_at + 30),
    )

    conversation.refresh_from_db()
    assert conversation.csat_comment == "A Maria foi muito atenciosa, obrigado!"
    assert conversation.csat_comment_at is not None
    with connection.cursor() as cursor:  # encrypted at rest
        cursor.execute(
            "SELECT csat_comment FROM conversations_conversation WHERE id = %s",
            [conversation.pk],
        )
        (stored,) = cursor.fetchone()
    assert stored.startswith("gAAAAA") and "Maria" not in stored
    assert Conversation.objects.filter(customer=conversation.customer).count() == 1
    assert not BotDecision.objects.exists()
    assert texts(graph)[-1] == "Recebemos o seu comentário. Obrigado!"
    # Both answers are part of the closed conversation's history.
    assert list(
        conversation.messages.filter(direction="in")
        .order_by("created_at")
        .values_list("type", "text")
    ) == [("interactive", "4 · Bom"), ("text", "A Maria foi muito atenciosa, obrigado!")]

    # After the comment, the customer's next message opens a new conversation, as always.
    webhook(client, django_capture_on_commit_callbacks, text_message(text="Estou sem internet"))
    new = Conversation.objects.filter(customer=conversation.customer).exclude(pk=conversation.pk)
    assert new.count() == 1 and new.get().state in ("bot", "waiting")


def test_the_rating_feeds_the_supervisors_dashboard(
    graph, client, agent, supervisor, conversation, django_capture_on_commit_callbacks
):
    close_in_console(client, agent, conversation, django_capture_on_commit_callbacks)
    webhook(
        client,
        django_capture_on_commit_callbacks,
        interactive_reply(reply_id=f"csat:{conversation.pk}:4", title="4 · Bom"),
    )
    login(client, supervisor)

    data = client.get("/console/dashboard/snapshot/").json()

    assert data["closed"] == 1
    assert (data["csat"]["requested"], data["csat"]["answered"]) == (1, 1)
    assert data["csat"]["average"] == 4.0
    assert data["csat"]["distribution"] == {"1": 0, "2": 0, "3": 0, "4": 1, "5": 0}
    page = client.get("/console/dashboard/live/").content.decode()
    assert "4,0<small>/5</small>" in page


def test_a_text_after_the_comment_window_opens_a_new_conversation(
    graph, client, agent, conversation, django_capture_on_commit_callbacks, settings
):
    settings.CONVERSATIONS_CSAT_COMMENT_MINUTES = 10
    close_in_console(client, agent, conversation, django_capture_on_commit_callbacks)
    rated_at = int(time.time()) - 15 * 60
    webhook(
        client,
        django_capture_on_commit_callbacks,
        interactive_reply(
            reply_id=f"csat:{conversation.pk}:2", title="2 · Ruim", timestamp=rated_at
        ),
    )

    webhook(client, django_capture_on_commit_callbacks, text_message(text="Oi, voltou a cair"))

    conversation.refresh_from_db()
    assert conversation.csat_score == 2 and conversation.csat_comment is None
    assert Conversation.objects.filter(customer=conversation.customer).count() == 2


def test_a_replayed_rating_is_stored_once_and_a_second_answer_changes_nothing(
    graph, client, agent, conversation, django_capture_on_commit_callbacks
):
    close_in_console(client, agent, conversation, django_capture_on_commit_callbacks)
    tap = interactive_reply(reply_id=f"csat:{conversation.pk}:5", title="5 · Excelente")
    webhook(client, django_capture_on_commit_callbacks, tap)
    webhook(client, django_capture_on_commit_callbacks, tap)  # Meta retries the same wamid
    webhook(
        client,
        django_capture_on_commit_callbacks,
        interactive_reply(reply_id=f"csat:{conversation.pk}:1", title="1 · Péssimo"),
    )

    conversation.refresh_from_db()
    assert conversation.csat_score == 5
    assert conversation.messages.filter(direction="in", type="interactive").count() == 2
    assert len(texts(graph)) == 1  # one thank-you
    assert Conversation.objects.filter(customer=conversation.customer).count() == 1


def test_closing_without_a_survey_still_sends_the_protocol_with_its_dates(
    graph, client, agent, conversation, settings, django_capture_on_commit_callbacks
):
    settings.CONVERSATIONS_CSAT_ENABLED = False

    response = close_in_console(client, agent, conversation, django_capture_on_commit_callbacks)

    assert response.status_code == 200
    assert surveys(graph) == []
    (text,) = texts(graph)
    conversation.refresh_from_db()
    opened, closed = (
        timezone.localtime(moment).strftime("%d/%m/%Y às %H:%M")
        for moment in (conversation.opened_at, conversation.closed_at)
    )
    assert f"protocolo {conversation.protocol}, registrado em {opened}" in text
    assert f"encerrado em {closed}" in text
    assert conversation.state == "closed" and conversation.csat_requested_at is None


def test_closing_again_or_retrying_never_sends_a_second_survey(
    graph, client, agent, conversation, django_capture_on_commit_callbacks
):
    first = close_in_console(client, agent, conversation, django_capture_on_commit_callbacks)
    again = close_in_console(client, agent, conversation, django_capture_on_commit_callbacks)
    survey = Message.objects.get(conversation=conversation, type="interactive", direction="out")
    deliver_outbound_message.delay(survey.pk)  # a retried delivery task
    with django_capture_on_commit_callbacks(execute=True):  # a retried request (another task)
        csat.csat_request_locked(conversation=conversation, resolution="resolved")

    assert (first.status_code, again.status_code) == (200, 409)
    assert len(surveys(graph)) == 1
    assert Message.objects.filter(conversation=conversation, type="interactive").count() == 1


def test_no_survey_outside_the_24_hour_window(
    graph, client, agent, customer, team_support, django_capture_on_commit_callbacks
):
    conversation = ConversationFactory(
        customer=customer,
        team=team_support,
        state=Conversation.State.ASSIGNED,
        assigned_agent=agent,
        last_customer_message_at=timezone.now() - timedelta(hours=25),
    )

    response = close_in_console(client, agent, conversation, django_capture_on_commit_callbacks)

    assert response.status_code == 200
    assert graph.sent() == []
    conversation.refresh_from_db()
    assert conversation.state == "closed" and conversation.csat_requested_at is None


def test_no_survey_for_spam(graph, client, agent, conversation, django_capture_on_commit_callbacks):
    close_in_console(client, agent, conversation, django_capture_on_commit_callbacks, "spam")
    assert graph.sent() == []


def test_a_rating_for_someone_elses_conversation_is_an_ordinary_message(
    graph, client, agent, conversation, django_capture_on_commit_callbacks
):
    close_in_console(client, agent, conversation, django_capture_on_commit_callbacks)
    stranger = CustomerFactory(wa_id="5521998887766")

    webhook(
        client,
        django_capture_on_commit_callbacks,
        interactive_reply(
            reply_id=f"csat:{conversation.pk}:1", title="1 · Péssimo", wa_id=stranger.wa_id
        ),
    )

    conversation.refresh_from_db()
    assert conversation.csat_score is None
    assert Conversation.objects.filter(customer=stranger).count() == 1  # its own, new one


def test_sair_right_after_the_rating_is_a_revocation_not_a_comment(
    graph, client, agent, conversation, django_capture_on_commit_callbacks
):
    close_in_console(client, agent, conversation, django_capture_on_commit_callbacks)
    webhook(
        client,
        django_capture_on_commit_callbacks,
        interactive_reply(reply_id=f"csat:{conversation.pk}:3", title="3 · Regular"),
    )

    webhook(client, django_capture_on_commit_callbacks, text_message(text="SAIR"))

    conversation.refresh_from_db()
    assert conversation.csat_comment is None
    assert "promocionais" in texts(graph)[-1]


def test_a_bot_resolution_also_asks_for_a_rating(
    graph, client, customer, django_capture_on_commit_callbacks
):
    conversation = ConversationFactory(customer=customer)
    with django_capture_on_commit_callbacks(execute=True):
        services.conversation_close(
            conversation=conversation,
            resolution=Conversation.Resolution.RESOLVED_BY_BOT,
            request_csat=True,
        )
    assert len(surveys(graph)) == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("role_groups_survive_flush")
def test_concurrent_closes_queue_one_survey(graph):
    if not on_postgres():
        pytest.skip("row locks are proven on PostgreSQL")
    supervisor = UserFactory(role=Role.SUPERVISOR)
    conversation = ConversationFactory(customer=CustomerFactory(), state=Conversation.State.WAITING)
    barrier = threading.Barrier(4)
    outcomes: list[str] = []

    def close() -> None:
        try:
            barrier.wait()
            services.conversation_close_by_staff(
                conversation=Conversation.objects.get(pk=conversation.pk),
                actor=supervisor,
                resolution="resolved",
            )
            outcomes.append("closed")
        except services.InvalidTransition:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=close) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sorted(outcomes) == ["closed", "refused", "refused", "refused"]
    assert Message.objects.filter(conversation=conversation, type="interactive").count() == 1
    assert len(surveys(graph)) == 1

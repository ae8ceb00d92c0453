"""Outbound delivery end to end: outbox → task → real client → Graph simulator over loopback."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from conversations import services
from conversations.models import Message
from conversations.tests.factories import ConversationFactory, CustomerFactory, MessageFactory
from ispsupport import ratelimit
from whatsapp import delivery
from whatsapp.models import EarlyStatus
from whatsapp.tasks.outbound import deliver_outbound_message, mark_conversation_read, sweep_outbox
from whatsapp.tests.loopback import *  # noqa: F403

pytestmark = pytest.mark.django_db
PNID = "100000000000001"


@pytest.fixture
def conversation(customer):
    return ConversationFactory(customer=customer)


def reply(conversation, text="Sua fatura vence dia 10.", **kwargs):
    """An agent's reply, queued in the outbox exactly as the console does it."""
    return services.message_record_outbound(
        conversation=conversation, sender_kind=Message.SenderKind.AGENT, text=text, **kwargs
    )


def test_a_text_reply_reaches_meta_as_the_exact_graph_request(
    graph, conversation, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        message = reply(conversation, text="Olá, Ana! Já verifiquei sua conexão.")

    (request,) = graph.requests
    assert request.path == f"/simulator/graph/v25.0/{PNID}/messages"
    assert request.authorization == "Bearer dev-access-token"
    assert request.body == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "+5511987654321",
        "type": "text",
        "text": {"preview_url": False, "body": "Olá, Ana! Já verifiquei sua conexão."},
    }
    message.refresh_from_db()
    assert message.status == Message.Status.SENT
    assert message.wamid and message.sent_at is not None


def test_interactive_buttons_and_templates_are_sent_as_graph_objects(graph, conversation):
    interactive = {
        "type": "button",
        "body": {"text": "Posso ajudar com mais alguma coisa?"},
        "action": {
            "buttons": [
                {"type": "reply", "reply": {"id": "sim", "title": "Sim"}},
                {"type": "reply", "reply": {"id": "nao", "title": "Não, obrigado"}},
            ]
        },
    }
    template = {
        "name": "fatura_disponivel",
        "language": {"code": "pt_BR"},
        "components": [{"type": "body", "parameters": [{"type": "text", "text": "Ana"}]}],
    }
    buttons = reply(
        conversation,
        type=Message.Type.INTERACTIVE,
        text="Posso ajudar com mais alguma coisa?",
        payload={"interactive": interactive},
    )
    model = reply(
        conversation,
        type=Message.Type.TEMPLATE,
        text="Ana, sua fatura…",
        payload={"template": template},
    )

    deliver_outbound_message.delay(buttons.pk)
    deliver_outbound_message.delay(model.pk)

    first, second = graph.sent()
    assert (first["type"], first["interactive"]) == ("interactive", interactive)
    assert (second["type"], second["template"]) == ("template", template)


def test_a_reply_to_a_customer_message_carries_its_wamid_as_context(graph, conversation):
    question = MessageFactory(conversation=conversation, wamid="wamid.CUSTOMERQUESTION")
    answer = reply(conversation, text="Sim, está incluso.", reply_to=question)

    deliver_outbound_message.delay(answer.pk)

    assert graph.sent()[0]["context"] == {"message_id": "wamid.CUSTOMERQUESTION"}


def test_media_with_caption_and_document_filename(graph, conversation):
    document = reply(
        conversation,
        type=Message.Type.DOCUMENT,
        text="Segunda via",
        media=services.MediaInfo(media_id="9988776655", filename="fatura-novembro.pdf"),
    )

    deliver_outbound_message.delay(document.pk)

    assert graph.sent()[0]["document"] == {
        "id": "9988776655",
        "caption": "Segunda via",
        "filename": "fatura-novembro.pdf",
    }


def test_replies_leave_from_the_number_the_customer_wrote_to(graph, settings):
    settings.WHATSAPP_PHONE_NUMBER_IDS = ["100000000000001", "100000000000002"]
    conversation = ConversationFactory(business_number_id="100000000000002")

    deliver_outbound_message.delay(reply(conversation).pk)

    assert graph.requests[0].path.endswith("/100000000000002/messages")


def test_a_customer_known_only_by_bsuid_is_addressed_by_recipient(graph):
    customer = CustomerFactory(wa_id=None, phone_e164=None, bsuid="BR.13491208655302741918")
    conversation = ConversationFactory(customer=customer)

    deliver_outbound_message.delay(reply(conversation).pk)

    body = graph.sent()[0]
    assert body["recipient"] == "BR.13491208655302741918" and "to" not in body


def test_running_the_task_twice_or_the_sweeper_sends_once(graph, conversation):
    message = reply(conversation)

    deliver_outbound_message.delay(message.pk)
    deliver_outbound_message.delay(message.pk)
    Message.objects.filter(pk=message.pk).update(created_at=timezone.now() - timedelta(hours=1))
    sweep_outbox.delay()

    assert len(graph.sent()) == 1


def test_a_message_claimed_by_another_worker_is_not_sent_until_its_lease_expires(
    graph, conversation
):
    message = reply(conversation)
    services.message_claim_for_delivery(message_id=message.pk, lease_seconds=60)

    deliver_outbound_message.delay(message.pk)  # the other worker holds it: nothing happens
    assert graph.requests == []

    # That worker died: after the lease the sweeper delivers it, once.
    Message.objects.filter(pk=message.pk).update(
        created_at=timezone.now() - timedelta(minutes=5),
        delivery_claimed_until=timezone.now() - timedelta(seconds=1),
    )
    assert sweep_outbox.delay().get() == 1
    assert len(graph.sent()) == 1
    message.refresh_from_db()
    assert message.status == Message.Status.SENT


@pytest.mark.parametrize("push", ["http_500", "rate_limit_130429"])
def test_transient_errors_are_retried_and_then_delivered(graph, conversation, push):
    if push == "http_500":
        graph.push_http(500, times=2)
    else:
        graph.push_error(130429, times=2)
    message = reply(conversation)

    deliver_outbound_message.delay(message.pk)

    message.refresh_from_db()
    assert message.status == Message.Status.SENT
    assert message.delivery_attempts == 3
    assert len(graph.requests) == 3 and len(graph.sent()) == 1


def test_transient_errors_fail_the_message_after_the_last_attempt(graph, conversation, settings):
    settings.WHATSAPP_DELIVERY_MAX_ATTEMPTS = 3
    graph.push_error(131000, times=5)
    message = reply(conversation)

    deliver_outbound_message.delay(message.pk)

    message.refresh_from_db()
    assert message.status == Message.Status.FAILED
    assert message.error_code == 131000 and len(graph.requests) == 3


def test_window_closed_fails_the_message_and_asks_for_a_template(graph, conversation):
    graph.push_error(131047)
    message = reply(conversation)

    deliver_outbound_message.delay(message.pk)

    message.refresh_from_db()
    conversation.refresh_from_db()
    assert message.status == Message.Status.FAILED and message.error_code == 131047
    assert conversation.template_required is True


def test_an_undeliverable_message_fails_with_metas_reason(graph, conversation):
    graph.push_error(131026)
    message = reply(conversation)

    deliver_outbound_message.delay(message.pk)

    message.refresh_from_db()
    assert message.status == Message.Status.FAILED
    assert (message.error_code, message.error_title) == (131026, "Message undeliverable")
    assert "WhatsApp phone number" in message.error_details
    assert message.conversation.events.filter(kind="delivery_failed").exists()


def test_pair_rate_limit_backs_off_that_customer_only(graph, conversation):
    graph.push_error(131056)
    held = reply(conversation, text="Primeira")
    other = ConversationFactory()

    deliver_outbound_message.delay(held.pk)
    deliver_outbound_message.delay(reply(other, text="Para outro cliente").pk)
    deliver_outbound_message.delay(reply(conversation, text="Segunda").pk)

    held.refresh_from_db()
    assert held.status == Message.Status.PENDING  # not dropped: scheduled for later
    assert held.delivery_claimed_until > timezone.now()
    assert [b["text"]["body"] for b in graph.sent()] == ["Para outro cliente"]
    assert ratelimit.held_for(f"wa:pair:{PNID}:{conversation.customer_id}") > 0


def test_an_expired_token_fails_the_message_and_readyz_reports_it(graph, conversation, client):
    graph.push_error(190)
    message = reply(conversation)

    deliver_outbound_message.delay(message.pk)

    message.refresh_from_db()
    assert message.status == Message.Status.FAILED and message.error_code == 190
    response = client.get("/readyz")
    assert response.status_code == 503
    assert "whatsapp_token" in response.json()["failing"]

    deliver_outbound_message.delay(reply(conversation).pk)  # the token was renewed
    assert client.get("/readyz").json()["checks"]["whatsapp_token"] == "ok"


def test_statuses_that_arrived_before_the_wamid_are_applied_after_mark_sent(graph, conversation):
    graph.push_wamid("wamid.FASTSTATUS")
    now = timezone.now()
    EarlyStatus.objects.create(wamid="wamid.FASTSTATUS", status="read", timestamp=now)
    EarlyStatus.objects.create(wamid="wamid.FASTSTATUS", status="delivered", timestamp=now)
    message = reply(conversation)

    deliver_outbound_message.delay(message.pk)

    message.refresh_from_db()
    assert message.wamid == "wamid.FASTSTATUS"
    assert message.status == Message.Status.READ and message.delivered_at is not None
    assert not EarlyStatus.objects.exists()


def test_the_pair_limit_defers_a_burst_instead_of_dropping_it(graph, conversation, settings):
    settings.WHATSAPP_PAIR_BURST = 2
    messages = [reply(conversation, text=f"Mensagem {i}") for i in range(3)]

    for message in messages:
        deliver_outbound_message.delay(message.pk)

    assert len(graph.sent()) == 2
    last = Message.objects.get(pk=messages[-1].pk)
    assert last.status == Message.Status.PENDING
    wait = (last.delivery_claimed_until - timezone.now()).total_seconds()
    assert 5 < wait <= 6  # retried when the customer's 6-second slot opens


def test_a_body_meta_would_refuse_fails_without_calling_meta(graph, conversation):
    message = reply(conversation, text="x" * 4097)

    deliver_outbound_message.delay(message.pk)

    message.refresh_from_db()
    assert message.status == Message.Status.FAILED and message.error_title
    assert graph.requests == []


def test_opening_a_conversation_marks_the_customers_last_message_read_once(graph, conversation):
    MessageFactory(conversation=conversation, wamid="wamid.OLDER")
    MessageFactory(conversation=conversation, wamid="wamid.LATEST")

    mark_conversation_read.delay(conversation.pk)
    mark_conversation_read.delay(conversation.pk)

    (request,) = graph.requests
    assert request.body == {
        "messaging_product": "whatsapp",
        "status": "read",
        "message_id": "wamid.LATEST",
    }


def test_the_stale_outbox_query_skips_fresh_and_claimed_messages(conversation):
    fresh = reply(conversation)
    old = reply(conversation)
    Message.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(minutes=5))

    assert delivery.outbox_stale_ids() == [old.pk]
    assert fresh.pk not in delivery.outbox_stale_ids(now=timezone.now())


class _DatabaseRefusesTheWamid:
    """A database that refuses the first ``times`` writes of Meta's wamid (a restart, a
    failover), at the driver boundary: every other statement goes through."""

    def __init__(self, times: int) -> None:
        self.times = times
        self.refused = 0

    def __call__(self, execute, sql, params, many, context):
        if (
            self.refused < self.times
            and sql.lstrip().upper().startswith("UPDATE")
            and ('"wamid"' in sql and '"sent_at"' in sql)
        ):
            self.refused += 1
            from django.db import OperationalError

            raise OperationalError("server closed the connection unexpectedly")
        return execute(sql, params, many, context)


def test_a_send_meta_accepted_is_recorded_once_the_database_answers_again_not_sent_twice(
    graph, conversation, settings
):
    from django.db import connection

    message = reply(conversation)
    refuse = _DatabaseRefusesTheWamid(times=2)
    with connection.execute_wrapper(refuse):
        outcome = delivery.message_deliver(message_id=message.pk)

    assert outcome.result == "sent" and refuse.refused == 2
    message.refresh_from_db()
    assert (message.status, message.wamid) == (Message.Status.SENT, outcome.wamid)
    assert len(graph.sent()) == 1  # Meta saw it once; nothing left pending to send again
    assert delivery.outbox_stale_ids(now=timezone.now() + timedelta(hours=1)) == []


def test_a_database_down_for_longer_than_the_claim_leaves_the_reply_to_be_sent_again(
    graph, conversation, settings
):
    from django.db import DatabaseError, connection

    settings.WHATSAPP_CLAIM_LEASE_SECONDS = 6  # retries stop 5 s before the claim ends
    message = reply(conversation)
    with (
        connection.execute_wrapper(_DatabaseRefusesTheWamid(times=100)),
        pytest.raises(DatabaseError),
    ):
        delivery.message_deliver(message_id=message.pk)

    message.refresh_from_db()
    assert message.status == Message.Status.PENDING and len(graph.sent()) == 1
    # The known limit (README "Faults"): once the claim expires the sweeper sends it again.
    assert delivery.outbox_stale_ids(now=timezone.now() + timedelta(hours=1)) == [message.pk]

"""The channel's series move when the real things happen: webhooks, Graph calls, the outbox.

Every assertion reads ``/metrics`` as Prometheus does (``ispsupport.tests.observability``)
before and after the action: counters are process-wide, so only the difference is the test's.
"""

from __future__ import annotations

import io
import json
import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from conversations import services
from conversations.models import Conversation, Message
from conversations.tests.factories import ConversationFactory
from ispsupport.tests.observability import scrape
from whatsapp.models import WebhookEvent
from whatsapp.tasks.outbound import deliver_outbound_message
from whatsapp.testing import envelope, signed_post, status, text_message
from whatsapp.tests.loopback import *  # noqa: F403

pytestmark = pytest.mark.django_db
URL = "/webhooks/whatsapp/"


def _body() -> bytes:
    return json.dumps(envelope(messages=[text_message(text="Oi, sem internet")])).encode()


def test_a_signed_webhook_counts_as_received_and_its_processing_moves_the_pipeline(
    client, django_capture_on_commit_callbacks
):
    before = scrape()

    with django_capture_on_commit_callbacks(execute=True):
        response = signed_post(client, _body())

    assert response.status_code == 200
    after = scrape()
    delta = lambda name, **labels: after.value(name, **labels) - before.value(name, **labels)  # noqa: E731
    assert delta("ispsupport_webhook_events_received_total") == 1
    assert delta("ispsupport_webhook_ack_duration_seconds_count") == 1
    assert delta("ispsupport_webhook_events_processed_total", status="processed") == 1
    assert delta("ispsupport_webhook_processing_lag_seconds_count") == 1
    assert delta("ispsupport_messages_inbound_total", type="text") == 1
    assert delta("ispsupport_message_inbound_latency_seconds_count") == 1
    assert delta("ispsupport_conversations_opened_total") == 1
    assert delta("ispsupport_live_events_published_total", kind="message.new") >= 1
    assert (
        delta("ispsupport_celery_tasks_total", task="bot.handle_inbound_message", state="success")
        == 1
    )
    # State read on scrape: the new conversation is with the bot, nothing is left pending.
    assert after.value("ispsupport_conversations_open", state="bot") == 1
    assert after.value("ispsupport_webhook_events_pending") == 0


@pytest.mark.parametrize(
    ("make_request", "status", "reason"),
    [
        (lambda c: signed_post(c, _body(), secret="not-the-app-secret"), 403, "signature"),
        (lambda c: c.post(URL, data=_body(), content_type="application/json"), 403, "signature"),
        (lambda c: signed_post(c, b'{"object": "page"}'), 400, "payload"),
        (lambda c: c.put(URL, data=_body(), content_type="application/json"), 405, "method"),
    ],
    ids=["forged", "unsigned", "not_an_envelope", "put"],
)
def test_a_refused_webhook_counts_as_rejected_with_its_reason_and_not_as_received(
    client, make_request, status, reason
):
    before = scrape()

    assert make_request(client).status_code == status

    after = scrape()
    rejected = "ispsupport_webhook_events_rejected_total"
    assert after.value(rejected, reason=reason) - before.value(rejected, reason=reason) == 1
    received = "ispsupport_webhook_events_received_total"
    assert after.value(received) == before.value(received)
    assert WebhookEvent.objects.count() == 0


def test_an_oversized_webhook_counts_as_too_large(client, settings):
    settings.WHATSAPP_WEBHOOK_MAX_BYTES = 100
    before = scrape()

    assert signed_post(client, _body()).status_code == 413

    after = scrape()
    name = "ispsupport_webhook_events_rejected_total"
    assert after.value(name, reason="too_large") - before.value(name, reason="too_large") == 1


def test_stored_but_unprocessed_events_show_as_backlog_with_their_age(client):
    # Without running the commit hooks the kick never starts the worker: the event waits.
    assert signed_post(client, _body()).status_code == 200
    WebhookEvent.objects.update(received_at=timezone.now() - timedelta(seconds=90))

    samples = scrape()

    assert samples.value("ispsupport_webhook_events_pending") == 1
    assert samples.value("ispsupport_webhook_oldest_pending_seconds") >= 90


def reply(conversation, text="Sua fatura vence dia 10."):
    return services.message_record_outbound(
        conversation=conversation, sender_kind=Message.SenderKind.AGENT, text=text
    )


def test_a_delivered_reply_counts_the_graph_call_the_delivery_and_empties_the_outbox(
    graph, customer, django_capture_on_commit_callbacks
):
    conversation = ConversationFactory(customer=customer)
    before = scrape()
    message = reply(conversation)  # commit hooks not run: the message waits in the outbox
    waiting = scrape()
    assert waiting.value("ispsupport_outbox_pending") == 1

    with django_capture_on_commit_callbacks(execute=True):
        deliver_outbound_message.delay(message.pk)

    message.refresh_from_db()
    assert message.status == Message.Status.SENT
    after = scrape()
    delta = lambda name, **labels: after.value(name, **labels) - before.value(name, **labels)  # noqa: E731
    assert delta("ispsupport_whatsapp_api_requests_total", endpoint="messages", outcome="ok") == 1
    assert delta("ispsupport_whatsapp_api_request_duration_seconds_count", endpoint="messages") == 1
    assert delta("ispsupport_outbound_deliveries_total", result="sent") == 1
    assert delta("ispsupport_outbound_queue_seconds_count") == 1
    assert delta("ispsupport_message_status_updates_total", status="sent") == 1
    assert after.value("ispsupport_outbox_pending") == 0


def test_metas_window_refusal_and_error_code_are_counted(
    graph, customer, django_capture_on_commit_callbacks
):
    graph.push_error(131047)
    conversation = ConversationFactory(customer=customer)
    before = scrape()

    with django_capture_on_commit_callbacks(execute=True):
        message = reply(conversation)

    message.refresh_from_db()
    assert message.status == Message.Status.FAILED
    after = scrape()
    delta = lambda name, **labels: after.value(name, **labels) - before.value(name, **labels)  # noqa: E731
    assert delta("ispsupport_whatsapp_window_refusals_total", source="meta") == 1
    assert delta("ispsupport_whatsapp_api_errors_total", code="131047") == 1
    assert (
        delta(
            "ispsupport_whatsapp_api_requests_total", endpoint="messages", outcome="window_closed"
        )
        == 1
    )
    assert delta("ispsupport_outbound_deliveries_total", result="failed") == 1
    assert delta("ispsupport_message_status_updates_total", status="failed") == 1


def test_a_reply_refused_locally_outside_the_window_is_counted(customer):
    conversation = ConversationFactory(
        customer=customer, last_customer_message_at=timezone.now() - timedelta(hours=25)
    )
    before = scrape()

    with pytest.raises(services.WindowClosed):
        reply(conversation)

    after = scrape()
    name = "ispsupport_whatsapp_window_refusals_total"
    assert after.value(name, source="local") - before.value(name, source="local") == 1


def test_metas_pair_limit_and_our_own_limiter_count_as_rate_limited(graph, customer, settings):
    conversation = ConversationFactory(customer=customer)
    graph.push_error(131056)
    before = scrape()

    deliver_outbound_message.delay(reply(conversation, text="Primeira").pk)  # Meta: 131056
    deliver_outbound_message.delay(reply(conversation, text="Segunda").pk)  # held: backoff
    settings.WHATSAPP_SEND_RATE_PER_SECOND = 1
    other = ConversationFactory()
    for text in ("Um", "Dois"):  # the number's tier: 1/s, no burst beyond one
        deliver_outbound_message.delay(reply(other, text=text).pk)

    after = scrape()
    delta = lambda limit: (  # noqa: E731
        after.value("ispsupport_whatsapp_rate_limited_total", limit=limit)
        - before.value("ispsupport_whatsapp_rate_limited_total", limit=limit)
    )
    assert delta("meta_pair") == 1
    assert delta("pair_hold") == 1
    assert delta("local") >= 1
    refused = "ispsupport_rate_limit_decisions_total"
    scope = "wa:num+wa:pair"
    assert after.value(refused, scope=scope, result="refused") > before.value(
        refused, scope=scope, result="refused"
    )


def test_each_graph_operation_is_counted_under_its_own_endpoint(graph, settings):
    from whatsapp.client import get_client
    from whatsapp.templates import templates_sync

    settings.WHATSAPP_BUSINESS_ACCOUNT_ID = "100000000000010"
    media_id = graph.add_media(b"\x89PNG fake image", "image/png", "foto.png")
    before = scrape()

    client = get_client()
    info = client.media_info(media_id)
    client.media_download(info.url, into=io.BytesIO(), max_bytes=1024)
    templates_sync(client=client)

    after = scrape()
    name = "ispsupport_whatsapp_api_requests_total"
    for endpoint in ("media_info", "media_download", "templates"):
        ok = after.value(name, endpoint=endpoint, outcome="ok")
        assert ok - before.value(name, endpoint=endpoint, outcome="ok") == 1, endpoint


def test_the_survey_at_closing_and_the_customers_rating_are_counted(
    graph, customer, agent, team_support, django_capture_on_commit_callbacks
):
    from conversations.models import Conversation
    from whatsapp import inbound
    from whatsapp.testing import interactive_reply

    conversation = ConversationFactory(
        customer=customer,
        team=team_support,
        state=Conversation.State.ASSIGNED,
        assigned_agent=agent,
        last_customer_message_at=timezone.now() - timedelta(minutes=3),
    )
    before = scrape()

    with django_capture_on_commit_callbacks(execute=True):
        services.conversation_close_by_staff(
            conversation=conversation, actor=agent, resolution="resolved"
        )
    tap = interactive_reply(reply_id=f"csat:{conversation.pk}:4", title="4 · Bom")
    assert signed_post(Client(), envelope(messages=[tap])).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        for event_id in WebhookEvent.objects.values_list("pk", flat=True):
            inbound.event_process(event_id=event_id)

    conversation.refresh_from_db()
    assert conversation.csat_score == 4
    after = scrape()
    delta = lambda name, **labels: after.value(name, **labels) - before.value(name, **labels)  # noqa: E731
    assert delta("ispsupport_csat_surveys_sent_total") == 1
    assert delta("ispsupport_csat_score_count") == 1
    assert delta("ispsupport_csat_score_sum") == 4
    assert delta("ispsupport_csat_score_bucket", le="3.0") == 0
    assert delta("ispsupport_csat_score_bucket", le="4.0") == 1


# Customer identifiers as they look: phone numbers, CPFs and protocol numbers are long digit
# runs; wamids, e-mail addresses and "+55" numbers have their own marks.
_IDENTIFIER_LIKE = re.compile(r"\d{8,}|wamid|@|\+55", re.IGNORECASE)


def test_no_label_value_names_a_customer_a_conversation_or_a_person(
    graph, agent, django_capture_on_commit_callbacks
):
    """After a customer's message, the bot's answer, an agent's reply with its delivery
    status and a failed log-in, no series carries an identifier in a label value."""
    wa_id = "5511976543210"
    inbound_wamid = "wamid.HBgNNTUxMTk3NjU0MzIxMBUCABIYFjNFQjBDMEQ"
    with django_capture_on_commit_callbacks(execute=True):
        body = envelope(
            messages=[text_message(wa_id=wa_id, wamid=inbound_wamid, text="cpf 123.456.789-09")],
            contacts=[{"profile": {"name": "Joana Quintanilha"}, "wa_id": wa_id}],
        )
        assert signed_post(Client(), body).status_code == 200
    conversation = services.conversation_claim(conversation=Conversation.objects.get(), agent=agent)
    with django_capture_on_commit_callbacks(execute=True):
        services.message_send_by_agent(conversation=conversation, agent=agent, text="Olá!")
    sent = Message.objects.filter(conversation=conversation, sender_kind="agent").get()
    with django_capture_on_commit_callbacks(execute=True):
        delivered = envelope(
            statuses=[status(wamid=sent.wamid, status="delivered", recipient=wa_id)]
        )
        assert signed_post(Client(), delivered).status_code == 200
    Client().post("/accounts/login/", {"username": agent.username, "password": "wrong"})

    samples = scrape()

    assert sent.wamid  # the reply reached the simulator and came back with Meta's id
    known = {
        wa_id,
        inbound_wamid.lower(),
        sent.wamid.lower(),
        conversation.protocol,
        "joana",
        "quintanilha",
        agent.username.lower(),
        "12345678909",
    }
    problems = []
    for family in samples.families.values():
        for sample in family.samples:
            for name, value in sample.labels.items():
                if name in ("le", "quantile"):
                    continue
                text = str(value).lower()
                if _IDENTIFIER_LIKE.search(text) or any(k in text for k in known):
                    problems.append(f"{sample.name}{{{name}={value!r}}}")
    assert not problems, problems
    # The scan saw the traffic above (labels that are about it).
    assert samples.value("ispsupport_messages_inbound_total", type="text") >= 1
    assert samples.value("ispsupport_message_status_updates_total", status="delivered") >= 1

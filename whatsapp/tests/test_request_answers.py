"""A data-subject request's answer reaches the customer on WhatsApp even when the 24-hour
window is closed (an approved template announces it; the answer follows when they write), and
an erasure's answer is sent before the data goes, exactly once, through the real client."""

from __future__ import annotations

from datetime import timedelta

import pytest
from celery.exceptions import Retry
from django.utils import timezone

from compliance.models import DataSubjectRequest
from compliance.services import dsr_answer, dsr_open, erasure_start
from compliance.tasks import erase_subject
from conversations.models import Conversation, Customer, Message
from conversations.tests.factories import ConversationFactory, CustomerFactory
from whatsapp import inbound
from whatsapp.models import MessageTemplate, WebhookEvent
from whatsapp.simulator.catalogue import DEMO_TEMPLATES
from whatsapp.testing import envelope, signed_post, text_message
from whatsapp.tests.loopback import *  # noqa: F403

pytestmark = pytest.mark.django_db

WA_ID = "5511987650001"
ANSWER = "Seguem os dados que tratamos sobre você: nome, telefone e 3 conversas."


def _load_templates() -> None:
    for t in DEMO_TEMPLATES:
        body = t["components"][0]["text"]
        MessageTemplate.objects.create(
            name=t["name"], language="pt_BR", body_text=body, parameter_count=1, meta_id=t["id"]
        )


def _customer(*, last_wrote_hours_ago: float, closed: bool = False) -> Conversation:
    customer = CustomerFactory(wa_id=WA_ID, phone_e164="+" + WA_ID)
    when = timezone.now() - timedelta(hours=last_wrote_hours_ago)
    return ConversationFactory(
        customer=customer,
        state=Conversation.State.CLOSED if closed else Conversation.State.WAITING,
        closed_at=when if closed else None,
        last_customer_message_at=when,
    )


def _access_request(customer: Customer) -> DataSubjectRequest:
    return dsr_open(kind=DataSubjectRequest.Kind.ACCESS, customer=customer)


def _outbound(customer: Customer):
    return Message.objects.filter(conversation__customer=customer, direction="out").order_by("pk")


def test_inside_the_window_the_answer_itself_is_sent(django_capture_on_commit_callbacks):
    conversation = _customer(last_wrote_hours_ago=1)
    request = _access_request(conversation.customer)
    dsr_answer(request=request, text=ANSWER, actor=None)
    request.refresh_from_db()
    assert request.answer_delivered and request.answer_notified_at is None
    assert [m.text for m in _outbound(conversation.customer)] == [ANSWER]


def test_outside_the_window_a_template_announces_it_and_the_answer_follows_a_reply(client):
    _load_templates()
    conversation = _customer(last_wrote_hours_ago=30, closed=True)
    customer = conversation.customer
    request = _access_request(customer)
    dsr_answer(request=request, text=ANSWER, actor=None)

    request.refresh_from_db()
    assert not request.answer_delivered and request.answer_notified_at is not None
    (notice,) = _outbound(customer)
    assert notice.type == Message.Type.TEMPLATE
    template = notice.payload["template"]
    assert template["name"] == "solicitacao_dados_respondida"
    assert template["components"][0]["parameters"] == [{"type": "text", "text": str(request.pk)}]
    assert ANSWER not in notice.text

    # The customer answers the template: the window is open again, the answer goes out once.
    for text in ("ok, pode mandar", "obrigado"):
        signed_post(client, envelope(messages=[text_message(wa_id=WA_ID, text=text)]))
        for event_id in WebhookEvent.objects.filter(status="received").values_list("pk", flat=True):
            inbound.event_process(event_id=event_id)
    request.refresh_from_db()
    assert request.answer_delivered
    assert [m.text for m in _outbound(customer)].count(ANSWER) == 1


def test_outside_the_window_without_a_template_nothing_is_sent_and_the_dpo_sees_it():
    conversation = _customer(last_wrote_hours_ago=30)
    request = _access_request(conversation.customer)
    dsr_answer(request=request, text=ANSWER, actor=None)
    request.refresh_from_db()
    assert not request.answer_delivered and request.answer_notified_at is None
    assert not _outbound(conversation.customer).exists()


def _erase(customer, django_capture_on_commit_callbacks) -> DataSubjectRequest:
    request = dsr_open(kind=DataSubjectRequest.Kind.ERASURE, customer=customer)
    with django_capture_on_commit_callbacks(execute=True):
        erasure_start(request=request, actor=None)
    request.refresh_from_db()
    return request


def _sends(graph):
    return [r for r in graph.requests if r.method == "POST" and r.path.endswith("/messages")]


def test_erasure_outside_the_window_sends_the_template_before_the_data_goes(
    graph, settings, django_capture_on_commit_callbacks
):
    _load_templates()
    conversation = _customer(last_wrote_hours_ago=48, closed=True)
    request = _erase(conversation.customer, django_capture_on_commit_callbacks)

    assert request.status == DataSubjectRequest.Status.ANSWERED and request.answer_delivered
    (send,) = _sends(graph)
    assert send.authorization == f"Bearer {settings.WHATSAPP_ACCESS_TOKEN}"
    assert send.body["to"] == "+" + WA_ID
    assert send.body["template"]["name"] == "solicitacao_dados_eliminados"
    assert send.body["template"]["components"][0]["parameters"][0]["text"] == str(request.pk)
    customer = Customer.objects.get(pk=conversation.customer_id)
    assert customer.status == Customer.Status.ANONYMIZED
    assert not Message.objects.filter(conversation__customer=customer).exists()


def test_erasure_inside_the_window_waits_out_a_meta_failure_and_sends_the_text_once(
    graph, django_capture_on_commit_callbacks
):
    conversation = _customer(last_wrote_hours_ago=2)
    customer_id = conversation.customer_id
    request = dsr_open(kind=DataSubjectRequest.Kind.ERASURE, customer=conversation.customer)
    graph.push_http(500, endpoint="messages")  # Meta fails once

    # First attempt: the answer cannot be sent, so nothing is erased; the task asks for a retry.
    with pytest.raises(Retry), django_capture_on_commit_callbacks(execute=True):
        erasure_start(request=request, actor=None)
    request.refresh_from_db()
    assert request.is_open and not request.answer_delivered
    assert Customer.objects.get(pk=customer_id).status == "active"
    assert Customer.objects.get(pk=customer_id).wa_id == WA_ID

    erase_subject.delay(request.pk)  # the retry Celery runs later

    sends = _sends(graph)
    assert [r.status for r in sends] == [500, 200]
    assert sends[-1].body["type"] == "text" and sends[-1].body["to"] == "+" + WA_ID
    assert "eliminação" in sends[-1].body["text"]["body"].lower()
    request.refresh_from_db()
    assert request.status == DataSubjectRequest.Status.ANSWERED and request.answer_delivered
    assert Customer.objects.get(pk=customer_id).status == "anonymized"

    erase_subject.delay(request.pk)  # a duplicate delivery of the task sends nothing more
    assert len(_sends(graph)) == 2

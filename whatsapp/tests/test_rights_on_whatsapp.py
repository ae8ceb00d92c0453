"""What a customer is entitled to on WhatsApp is answered at once, before the bot."""

from __future__ import annotations

import pytest
from django.utils import timezone

from compliance.models import ConsentRecord, DataSubjectRequest
from conversations.identity import customers_by_identity
from conversations.models import Conversation, Message
from conversations.tests.factories import ConversationFactory, CustomerFactory
from whatsapp import inbound
from whatsapp.models import WebhookEvent
from whatsapp.testing import envelope, signed_post, text_message

pytestmark = pytest.mark.django_db


def _send(client, text: str, wa_id: str = "5511987654321") -> Conversation:
    signed_post(client, envelope(messages=[text_message(wa_id=wa_id, text=text)]))
    for event_id in WebhookEvent.objects.filter(status="received").values_list("pk", flat=True):
        inbound.event_process(event_id=event_id)
    return Conversation.objects.get(customer__in=customers_by_identity(wa_id=wa_id))


def _replies(conversation: Conversation) -> list[str]:
    return list(
        conversation.messages.filter(direction="out")
        .order_by("created_at", "pk")
        .values_list("text", flat=True)
    )


def test_sair_revokes_marketing_and_confirms(client):
    conversation = _send(client, "SAIR")
    revoked = ConsentRecord.objects.filter(
        customer=conversation.customer, purpose=ConsentRecord.Purpose.MARKETING
    )
    assert revoked.exists()
    replies = _replies(conversation)
    assert len(replies) == 1 and "promocionais" in replies[0]


def test_erasure_request_is_opened_and_the_customer_told_its_deadline(client):
    conversation = _send(client, "quero apagar meus dados")
    request = DataSubjectRequest.objects.get(customer=conversation.customer)
    (reply,) = _replies(conversation)
    assert str(request.pk) in reply
    assert timezone.localtime(request.due_at).strftime("%d/%m/%Y") in reply  # São Paulo date


def test_protocol_history_of_the_customers_own_protocol(client):
    first = _send(client, "oi")
    protocol = first.protocol
    conversation = _send(client, f"quero o histórico do protocolo {protocol}")
    reply = _replies(conversation)[-1]
    assert protocol in reply and "Histórico do protocolo" in reply


def test_protocol_history_of_someone_elses_protocol_is_refused(client):
    other = ConversationFactory(customer=CustomerFactory(wa_id="5521999990000"))
    conversation = _send(client, f"histórico do protocolo {other.protocol}")
    reply = _replies(conversation)[-1]
    assert "Não encontramos" in reply
    sent = Message.objects.filter(conversation=conversation, direction="out")
    assert not any("Síntese" in m.text for m in sent)  # text is encrypted: compared in Python

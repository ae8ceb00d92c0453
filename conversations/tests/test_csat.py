"""CSAT in the core: the survey is requested once, and the customer's comment is personal data
(exported, erased with the conversation, expired with the messages). The WhatsApp round trip
through the Graph simulator is in whatsapp/tests/test_csat.py."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from compliance.registry import ErasureReport
from compliance.services import export_payload, retention_apply
from conversations import csat, services
from conversations.models import Conversation, Message
from conversations.privacy import ConversationsProvider
from conversations.tests.factories import ConversationFactory

pytestmark = pytest.mark.django_db


def rated(customer, *, closed_days_ago: float = 0.0, comment: str = "Muito bom") -> Conversation:
    closed_at = timezone.now() - timedelta(days=closed_days_ago)
    conversation = ConversationFactory(
        customer=customer,
        state=Conversation.State.CLOSED,
        closed_at=closed_at,
        resolution="resolved",
        last_customer_message_at=closed_at,
    )
    assert csat.csat_record_score(conversation=conversation, score=4, at=closed_at)
    assert csat.csat_record_comment(conversation=conversation, text=comment, at=closed_at)
    return conversation


def test_the_survey_is_requested_once_per_conversation(customer):
    conversation = ConversationFactory(customer=customer)

    first = csat.csat_request_locked(conversation=conversation, resolution="resolved")
    second = csat.csat_request_locked(conversation=conversation, resolution="resolved")

    assert first is not None and second is None
    assert Message.objects.filter(conversation=conversation, type="interactive").count() == 1
    conversation.refresh_from_db()
    assert conversation.csat_requested_at is not None


def test_no_survey_when_csat_is_switched_off(customer, settings):
    settings.CONVERSATIONS_CSAT_ENABLED = False
    conversation = ConversationFactory(customer=customer)
    services.conversation_close(conversation=conversation, resolution="resolved", request_csat=True)
    assert not Message.objects.filter(conversation=conversation).exists()


def test_a_second_score_or_comment_changes_nothing(customer):
    conversation = rated(customer)
    now = timezone.now()
    assert not csat.csat_record_score(conversation=conversation, score=1, at=now)
    assert not csat.csat_record_comment(conversation=conversation, text="outro", at=now)
    conversation.refresh_from_db()
    assert (conversation.csat_score, conversation.csat_comment) == (4, "Muito bom")


@pytest.mark.parametrize(
    "reply_id, expected",
    [
        ("csat:42:5", (42, 5)),
        ("csat:42:0", None),
        ("csat:42:6", None),
        ("csat:x:5", None),
        ("bot:resolved_yes", None),
        ("", None),
        (None, None),
    ],
)
def test_only_survey_row_ids_are_ratings(reply_id, expected):
    assert csat.parse_reply_id(reply_id) == expected


def test_the_comment_is_exported(customer):
    rated(customer, comment="A atendente foi ótima")

    exported = export_payload(customer)["data"]["conversations"][0]

    assert exported["csat_score"] == 4
    assert exported["csat_comment"] == "A atendente foi ótima"
    assert exported["csat_comment_at"] and exported["csat_answered_at"]


def test_erasure_removes_the_comment_with_the_conversation(customer):
    conversation = rated(customer)

    ConversationsProvider().erase(customer, ErasureReport())

    assert not Conversation.objects.filter(pk=conversation.pk).exists()


def test_retention_expires_old_comments_with_the_messages_and_keeps_the_score(customer):
    old = rated(customer, closed_days_ago=800)  # messages are kept 730 days
    recent = rated(customer, closed_days_ago=10, comment="Recente")

    counts = retention_apply(dry_run=False)

    old.refresh_from_db()
    recent.refresh_from_db()
    assert counts["csat_comments"] == 1
    assert (old.csat_score, old.csat_comment) == (4, None)
    assert recent.csat_comment == "Recente"

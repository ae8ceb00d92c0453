"""Reads for customers and conversations (pages, APIs, exports): no N+1, no writes."""

from __future__ import annotations

from django.db.models import QuerySet

from conversations.models import Conversation, Customer, Message
from conversations.phones import normalize_phone


def customer_find_by_phone(*, phone: str) -> Customer | None:
    """Look a customer up by any spelling of their number (9th digit or not)."""
    canonical = normalize_phone(phone, national=True)
    if canonical is None:
        return None
    return Customer.objects.filter(phone_e164=canonical).first()


def conversation_open_for_customer(*, customer: Customer) -> Conversation | None:
    return customer.conversations.exclude(state=Conversation.State.CLOSED).first()


def message_history(*, conversation: Conversation) -> QuerySet[Message]:
    """The conversation's messages in the order the customer and agents wrote them."""
    return conversation.messages.select_related("sender_user", "reply_to").order_by(
        "created_at", "pk"
    )

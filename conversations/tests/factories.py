"""Factories for customers, conversations and messages."""

from __future__ import annotations

import factory
from django.utils import timezone

from conversations import services
from conversations.models import Conversation, Customer, Message


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    wa_id = factory.Sequence(lambda n: f"55119{n:08d}")
    phone_e164 = factory.LazyAttribute(lambda c: f"+{c.wa_id}" if c.wa_id else None)
    name = factory.Faker("name", locale="pt_BR")


class ConversationFactory(factory.django.DjangoModelFactory):
    """A conversation in state bot with a real protocol number and a recent customer message."""

    class Meta:
        model = Conversation

    customer = factory.SubFactory(CustomerFactory)
    protocol = factory.LazyFunction(services.protocol_next)
    last_customer_message_at = factory.LazyFunction(timezone.now)


class MessageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Message

    conversation = factory.SubFactory(ConversationFactory)
    wamid = factory.Sequence(lambda n: f"wamid.TEST{n:010d}")
    direction = Message.Direction.INBOUND
    sender_kind = Message.SenderKind.CUSTOMER
    type = Message.Type.TEXT
    text = "Estou sem internet"
    status = Message.Status.RECEIVED

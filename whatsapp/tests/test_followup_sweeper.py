"""A customer's message whose bot turn a broker outage swallowed is answered by the sweeper.

The bot turn is enqueued after the message's commit (queue ``ai``). When the broker refuses it,
the message is stored and nothing else would ever answer; ``whatsapp.sweep_inbound_followups``
(beat) enqueues it again. Found by the fault tests of the local fleet (tests/fleet/test_faults.py,
Redis stopped under load).
"""

from __future__ import annotations

import contextlib
from datetime import timedelta

import pytest
from django.utils import timezone

from bot.models import BotDecision
from conversations.models import Conversation, Message
from whatsapp import inbound
from whatsapp.models import WebhookEvent
from whatsapp.tasks.inbound import sweep_inbound_followups
from whatsapp.testing import envelope, signed_post, text_message

pytestmark = pytest.mark.django_db

WA_ID = "5511987650001"


@contextlib.contextmanager
def _broker(url: str):
    """Publish for real (not eagerly) to ``url``: a closed port refuses every enqueue; kombu's
    in-memory transport queues them where no worker ever takes them (a backlog)."""
    from ispsupport.celery import app

    saved = {
        key: app.conf[key] for key in ("task_always_eager", "broker_url", "task_publish_retry")
    }
    app.conf.update(task_always_eager=False, broker_url=url, task_publish_retry=False)
    app._pool = None  # a connection pool for the URL above, not the one the process had
    app.amqp._producer_pool = None
    try:
        yield
    finally:
        app._pool = None
        app.amqp._producer_pool = None
        app.conf.update(saved)


def _broker_down():
    return _broker("redis://127.0.0.1:9/0")


def _receive(client, django_capture_on_commit_callbacks, text: str) -> Message:
    """The webhook and its processing, with the follow-ups' enqueue run after commit."""
    wamid = f"wamid.FOLLOW{timezone.now().timestamp():.6f}".replace(".", "")
    signed_post(client, envelope(messages=[text_message(wa_id=WA_ID, text=text, wamid=wamid)]))
    with django_capture_on_commit_callbacks(execute=True):
        for event_id in WebhookEvent.objects.filter(status="received").values_list("pk", flat=True):
            inbound.event_process(event_id=event_id)
    return Message.objects.get(wamid=wamid)


def _age(message: Message, seconds: float) -> None:
    """As if the customer had written ``seconds`` ago."""
    at = timezone.now() - timedelta(seconds=seconds)
    Message.objects.filter(conversation=message.conversation).update(created_at=at)
    Conversation.objects.filter(pk=message.conversation_id).update(last_customer_message_at=at)


def _sweep(django_capture_on_commit_callbacks) -> int:
    with django_capture_on_commit_callbacks(execute=True):
        return sweep_inbound_followups()


def test_a_bot_turn_the_broker_refused_is_enqueued_by_the_sweeper(
    client, django_capture_on_commit_callbacks
):
    with _broker_down():
        message = _receive(client, django_capture_on_commit_callbacks, "minha internet caiu")
    # Stored and acknowledged, but the bot never heard of it: the customer waits forever.
    assert message.conversation.state == Conversation.State.BOT
    assert not BotDecision.objects.filter(message=message).exists()
    assert not Message.objects.filter(direction="out").exists()

    _age(message, 300)
    assert _sweep(django_capture_on_commit_callbacks) == 1

    assert BotDecision.objects.filter(message=message).count() == 1
    assert Message.objects.filter(conversation=message.conversation, direction="out").exists()
    # Decided: the next sweep leaves it alone.
    assert _sweep(django_capture_on_commit_callbacks) == 0


def test_a_turn_only_queued_behind_a_backlog_is_re_dispatched_once_per_period(
    client, django_capture_on_commit_callbacks
):
    with _broker("memory://"):
        message = _receive(client, django_capture_on_commit_callbacks, "minha internet caiu")
        _age(message, 300)
        assert _sweep(django_capture_on_commit_callbacks) == 1  # queued again, once
        assert _sweep(django_capture_on_commit_callbacks) == 0
    assert not BotDecision.objects.exists()


def test_the_sweeper_waits_before_taking_a_turn_over_and_gives_up_on_stale_ones(
    client, django_capture_on_commit_callbacks, settings
):
    settings.WHATSAPP_FOLLOWUP_SWEEP_AFTER_SECONDS = 120
    with _broker_down():
        message = _receive(client, django_capture_on_commit_callbacks, "minha internet caiu")

    _age(message, 60)  # the bot may only be slow
    assert _sweep(django_capture_on_commit_callbacks) == 0
    _age(message, 2 * 3600)  # past an hour the bot no longer answers as if it were now
    assert _sweep(django_capture_on_commit_callbacks) == 0
    assert not BotDecision.objects.exists()


def test_a_rights_request_answered_without_the_bot_is_left_alone(
    client, django_capture_on_commit_callbacks
):
    message = _receive(client, django_capture_on_commit_callbacks, "SAIR")
    (reply,) = Message.objects.filter(conversation=message.conversation, direction="out")
    assert "promocionais" in reply.text
    assert not BotDecision.objects.exists()  # answered by the rights path, not the bot

    _age(message, 300)
    reply.created_at = timezone.now() - timedelta(seconds=299)
    reply.save(update_fields=["created_at"])
    assert _sweep(django_capture_on_commit_callbacks) == 0
    assert Message.objects.filter(conversation=message.conversation, direction="out").count() == 1

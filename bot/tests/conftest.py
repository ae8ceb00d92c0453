"""Fixtures for the bot's behavioural tests: conversations, inbound messages, the Gemini fake."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.utils import timezone

from bot import client
from bot.fake_gemini import FakeGemini
from bot.tasks import handle_inbound_message
from conversations.models import Conversation, ConversationEvent, Message
from conversations.services import message_record_inbound

API_KEY = "test-gemini-key"
_wamids = itertools.count(1)


@pytest.fixture(autouse=True)
def _knowledge_base_only(settings):
    """These tests pin the bot of an ISP without an ERP integration (``ERP_ADAPTER=none``):
    billing, visits and plans are answered from the knowledge base. Self-service with an ERP
    (identity, bill, unlock, status, visits) is tested end to end in
    ``whatsapp/tests/test_self_service.py``,
    whose fixtures switch the demo or the REST adapter back on."""
    settings.ERP_ADAPTER = "none"


@pytest.fixture
def conversation(db, customer, team_support, team_billing) -> Conversation:
    from conversations.tests.factories import ConversationFactory

    return ConversationFactory(customer=customer)


def make_inbound(
    conversation: Conversation,
    text: str = "",
    *,
    type: str = "text",
    payload: dict[str, Any] | None = None,
    media: tuple[str, bytes, str] | None = None,
) -> Message:
    """Store a customer's message through the real inbound service (as the webhook would)."""
    wamid = f"wamid.BOT{next(_wamids):08d}"
    raw = payload or {"id": wamid, "type": type, **({"text": {"body": text}} if text else {})}
    message, created = message_record_inbound(
        conversation=conversation,
        wamid=wamid,
        type=type,
        timestamp=timezone.now(),
        text=text,
        payload=raw,
    )
    assert created
    if media is not None:
        filename, data, mime_type = media
        # What whatsapp's media download leaves behind: the file and its MIME type.
        message.media_file.save(filename, ContentFile(data), save=False)
        message.media_mime_type = mime_type
        message.save(update_fields=["media_file", "media_mime_type"])
    return message


@pytest.fixture
def say(conversation) -> Callable[..., Message]:
    """Send a customer message to the bot through the real Celery task (eager in tests)."""

    def _say(text: str = "", *, conv: Conversation | None = None, **kwargs: Any) -> Message:
        message = make_inbound(conv or conversation, text, **kwargs)
        handle_inbound_message.delay(message.pk)
        return message

    return _say


def button_reply(reply_id: str, title: str = "ok") -> dict[str, Any]:
    return {
        "type": "interactive",
        "interactive": {"type": "button_reply", "button_reply": {"id": reply_id, "title": title}},
    }


def list_reply(reply_id: str, title: str = "ok") -> dict[str, Any]:
    return {
        "type": "interactive",
        "interactive": {"type": "list_reply", "list_reply": {"id": reply_id, "title": title}},
    }


def bot_messages(conversation: Conversation) -> list[Message]:
    return list(
        Message.objects.filter(
            conversation=conversation,
            direction=Message.Direction.OUTBOUND,
            sender_kind=Message.SenderKind.BOT,
        ).order_by("created_at", "pk")
    )


def escalation_event(conversation: Conversation) -> ConversationEvent | None:
    return (
        ConversationEvent.objects.filter(
            conversation=conversation, kind=ConversationEvent.Kind.ESCALATED
        )
        .order_by("-pk")
        .first()
    )


@pytest.fixture(scope="session")
def gemini_server() -> Iterator[FakeGemini]:
    with FakeGemini(api_key=API_KEY) as fake:
        yield fake
    client.close_clients()


@pytest.fixture
def fake_gemini(gemini_server: FakeGemini, settings) -> Iterator[FakeGemini]:
    """The Gemini fake with the real client pointed at it (key set, short timeouts)."""
    gemini_server.reset()
    gemini_server.set_default(None)
    settings.GEMINI_API_KEY = API_KEY
    settings.GEMINI_BASE_URL = gemini_server.base_url
    settings.GEMINI_TIMEOUT_SECONDS = 2.0
    settings.GEMINI_BREAKER_FAIL_MAX = 5
    settings.GEMINI_REQUESTS_PER_MINUTE = 1000
    from ispsupport import ratelimit

    ratelimit.reset_backend()
    yield gemini_server
    gemini_server.reset()


@pytest.fixture
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path

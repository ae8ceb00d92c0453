"""Shared by the outage and campaign tests: a customer's phone on the signed webhook, the
demo templates, and status webhooks as Meta sends them.

The phone never looks customers up by their number: it finds its conversation through the
wamid of the last message it sent (customer identity columns are looked up only by
``conversations``' own services).
"""

from __future__ import annotations

import pytest
from django.utils import timezone

from conversations.models import Conversation, Customer, Message
from whatsapp.models import MessageTemplate
from whatsapp.simulator.catalogue import DEMO_TEMPLATES
from whatsapp.templates import body_of, parameter_count
from whatsapp.testing import envelope, new_wamid, signed_post, status, text_message

# The fixtures, for a star import in test modules (as whatsapp.tests.loopback).
__all__ = ["phone", "templates"]


class Phone:
    """A customer's WhatsApp: writes through the signed webhook, reads what the simulator got."""

    def __init__(self, client, graph, capture, wa_id: str) -> None:
        self.client, self.graph, self.capture, self.wa_id = client, graph, capture, wa_id
        self.seen = 0
        self.last_wamid = ""

    def _post(self, message: dict) -> list[dict]:
        self.last_wamid = message["id"]
        with self.capture(execute=True):
            response = signed_post(self.client, envelope(messages=[message]))
        assert response.status_code == 200
        self.graph.wait_idle(5)
        return self.new()

    def new(self) -> list[dict]:
        """What reached this phone since the last look."""
        sent = self.received()
        fresh, self.seen = sent[self.seen :], len(sent)
        return fresh

    def received(self) -> list[dict]:
        return [b for b in self.graph.sent() if b["to"] == "+" + self.wa_id]

    def say(self, text: str) -> list[dict]:
        return self._post(text_message(wa_id=self.wa_id, text=text))

    def tap(self, reply_id: str, title: str = "ok") -> list[dict]:
        return self._post(
            {
                "from": self.wa_id,
                "id": new_wamid(),
                "timestamp": str(int(timezone.now().timestamp())),
                "type": "interactive",
                "interactive": {
                    "type": "button_reply",
                    "button_reply": {"id": reply_id, "title": title},
                },
            }
        )

    @property
    def conversation(self) -> Conversation:
        """The conversation of the last message this phone sent."""
        return (
            Message.objects.select_related("conversation").get(wamid=self.last_wamid).conversation
        )

    @property
    def customer(self) -> Customer:
        return self.conversation.customer


@pytest.fixture
def phone(client, graph, django_capture_on_commit_callbacks, settings):
    # Turns follow each other in milliseconds here; Meta's pair rate is tested in whatsapp/.
    settings.WHATSAPP_PAIR_BURST = 100

    def make(wa_id: str) -> Phone:
        return Phone(client, graph, django_capture_on_commit_callbacks, wa_id)

    return make


@pytest.fixture
def templates(db) -> None:
    """The simulator's catalogue as approved templates (as ``sync_whatsapp_templates`` does)."""
    for t in DEMO_TEMPLATES:
        body = body_of(t["components"])
        MessageTemplate.objects.create(
            name=t["name"],
            language=t["language"],
            category=t["category"],
            body_text=body,
            parameter_count=parameter_count(body),
            meta_id=t["id"],
        )


def text_of(body: dict) -> str:
    if body["type"] == "text":
        return body["text"]["body"]
    if body["type"] == "interactive":
        return body["interactive"]["body"]["text"]
    return ""


def post_status(client, capture, *, wamid: str, state: str, recipient: str, errors=None) -> None:
    """One status webhook from Meta (sent, delivered, read or failed) for ``wamid``."""
    with capture(execute=True):
        response = signed_post(
            client,
            envelope(
                statuses=[status(wamid=wamid, status=state, recipient=recipient, errors=errors)]
            ),
        )
    assert response.status_code == 200

"""Builders for Meta-shaped webhook bodies, for tests, the simulator and benchmarks.

Not used by the request path. Shapes follow ../shared/whatsapp-payloads/WHATSAPP-FACTS.md §3.
"""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

from django.conf import settings

from whatsapp.inbound import sign

_counter = itertools.count(1)


def new_wamid() -> str:
    return f"wamid.TEST{time.time_ns():x}{next(_counter):06d}"


def text_message(
    *,
    wa_id: str = "5511987654321",
    text: str = "Oi, estou sem internet",
    wamid: str | None = None,
    timestamp: int | None = None,
    context_id: str | None = None,
) -> dict[str, Any]:
    message: dict[str, Any] = {
        "from": wa_id,
        "id": wamid or new_wamid(),
        "timestamp": str(timestamp if timestamp is not None else int(time.time())),
        "type": "text",
        "text": {"body": text},
    }
    if context_id:
        message["context"] = {"from": wa_id, "id": context_id}
    return message


def interactive_reply(
    *,
    reply_id: str,
    title: str,
    wa_id: str = "5511987654321",
    kind: str = "list_reply",
    wamid: str | None = None,
    timestamp: int | None = None,
) -> dict[str, Any]:
    """A customer's tap on a list row (``list_reply``) or a reply button (``button_reply``)."""
    return {
        "from": wa_id,
        "id": wamid or new_wamid(),
        "timestamp": str(timestamp if timestamp is not None else int(time.time())),
        "type": "interactive",
        "interactive": {"type": kind, kind: {"id": reply_id, "title": title}},
    }


def status(
    *, wamid: str, status: str, recipient: str = "5511987654321", errors: list | None = None
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": wamid,
        "status": status,
        "timestamp": str(int(time.time())),
        "recipient_id": recipient,
    }
    if errors:
        item["errors"] = errors
    return item


def envelope(
    *,
    messages: list[dict] | None = None,
    statuses: list[dict] | None = None,
    contacts: list[dict] | None = None,
    phone_number_id: str | None = None,
    field: str = "messages",
    errors: list[dict] | None = None,
) -> dict[str, Any]:
    """One entry with one change, in Meta's envelope."""
    value: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {
            "display_phone_number": "551140040000",
            "phone_number_id": phone_number_id or settings.WHATSAPP_PHONE_NUMBER_IDS[0],
        },
    }
    if messages is not None:
        value["messages"] = messages
        senders = dict.fromkeys(m["from"] for m in messages if m.get("from"))
        value["contacts"] = contacts or [
            {"profile": {"name": "Cliente Teste"}, "wa_id": wa_id} for wa_id in senders
        ]
    if statuses is not None:
        value["statuses"] = statuses
    if errors is not None:
        value["errors"] = errors
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"field": field, "value": value}]}],
    }


def signed_post(client, body: dict | bytes | str, *, secret: str | None = None, **extra):
    """POST ``body`` to the webhook with a valid Meta signature through a Django test client."""
    raw = (
        body
        if isinstance(body, bytes)
        else (body.encode() if isinstance(body, str) else json.dumps(body).encode())
    )
    return client.post(
        "/webhooks/whatsapp/",
        data=raw,
        content_type="application/json",
        HTTP_X_HUB_SIGNATURE_256=sign(raw, secret),
        **extra,
    )

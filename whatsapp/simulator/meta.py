"""What Meta would say: send-body validation, success and error bodies, webhook envelopes.

Pure functions (no Django models, no I/O) so the simulator's async views can call them on the
event loop. Shapes follow ../shared/whatsapp-payloads/WHATSAPP-FACTS.md §3, §5 and §6.
"""

from __future__ import annotations

import re
import secrets
import time
from typing import Any

WABA_ID = "102290129340398"
SEND_TYPES = frozenset(
    {
        "text",
        "image",
        "audio",
        "video",
        "document",
        "sticker",
        "interactive",
        "template",
        "location",
        "contacts",
        "reaction",
    }
)
MEDIA_TYPES = frozenset({"image", "audio", "video", "document", "sticker"})
_MB = 1024 * 1024
# Upload limits by MIME type (sticker: the animated limit; Meta's static limit is 100 KB).
UPLOAD_LIMITS: dict[str, int] = {
    "image/jpeg": 5 * _MB,
    "image/png": 5 * _MB,
    "image/webp": 500 * 1024,
    **{m: 16 * _MB for m in ("audio/aac", "audio/amr", "audio/mpeg", "audio/mp4", "audio/ogg")},
    "video/mp4": 16 * _MB,
    "video/3gpp": 16 * _MB,
    **{
        m: 100 * _MB
        for m in (
            "text/plain",
            "application/pdf",
            "application/msword",
            "application/vnd.ms-excel",
            "application/vnd.ms-powerpoint",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        )
    },
}
_TO = re.compile(r"\+?\d{8,15}")

# code → (HTTP status, title, details): Meta's table (§6), English wording.
ERRORS: dict[int, tuple[int, str, str]] = {
    2: (503, "Service temporarily unavailable", "Temporary downtime or overload."),
    4: (400, "Too many calls", "The app has reached its API call rate limit."),
    100: (400, "Invalid parameter", "Invalid parameter."),
    190: (401, "Error validating access token: Session has expired", ""),
    368: (403, "Temporarily blocked for policies violations", ""),
    130429: (
        400,
        "Rate limit hit",
        "Cloud API message throughput has been reached.",
    ),
    131000: (500, "Something went wrong", "Something went wrong."),
    131008: (400, "Required parameter is missing", ""),
    131016: (500, "Service unavailable", "A service is temporarily unavailable."),
    131026: (
        400,
        "Message undeliverable",
        "Unable to deliver message. Reasons can include: the recipient phone number is not a "
        "WhatsApp phone number; the recipient has not accepted the new Terms of Service.",
    ),
    131047: (
        400,
        "Re-engagement message",
        "Message failed to send because more than 24 hours have passed since the customer "
        "last replied to this number.",
    ),
    131051: (400, "Unsupported message type", ""),
    131053: (400, "Media upload error", "Unable to upload the media used in the message."),
    131056: (
        400,
        "(Business Account, Consumer Account) pair rate limit hit",
        "Too many messages sent from the sender phone number to the same recipient phone "
        "number in a short period of time.",
    ),
    131057: (500, "Account in maintenance mode", ""),
    133004: (503, "Server temporarily unavailable", ""),
}


def fbtrace_id() -> str:
    return "A" + secrets.token_urlsafe(16)


def new_wamid() -> str:
    return "wamid.SIM" + secrets.token_hex(12).upper()


def error_body(
    code: int, *, title: str | None = None, details: str | None = None
) -> tuple[int, dict[str, Any]]:
    """HTTP status and Meta's synchronous error body for ``code``."""
    status, default_title, default_details = ERRORS.get(code, (400, "Invalid parameter", ""))
    title = title or default_title
    error: dict[str, Any] = {
        "message": f"(#{code}) {title}",
        "type": "OAuthException",
        "code": code,
        "error_data": {"messaging_product": "whatsapp", "details": details or default_details},
        "fbtrace_id": fbtrace_id(),
    }
    if code == 190:
        error["error_subcode"] = 463
        error["message"] = title
        del error["error_data"]
    return status, {"error": error}


def webhook_error(code: int) -> dict[str, Any]:
    """An error object as it appears in ``statuses[].errors`` of a failed status webhook."""
    _status, title, details = ERRORS.get(code, (400, "Error", ""))
    return {
        "code": code,
        "title": title,
        "message": title,
        "error_data": {"details": details},
        "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/",
    }


class Invalid(Exception):
    def __init__(self, code: int, details: str) -> None:
        super().__init__(details)
        self.code = code
        self.details = details


def _require(condition: bool, details: str, code: int = 100) -> None:
    if not condition:
        raise Invalid(code, details)


def validate_send(body: Any) -> None:
    """Raise ``Invalid`` as Meta would (codes 100/131008/131009) for a malformed send body."""
    _require(isinstance(body, dict), "The request body must be a JSON object.")
    _require(
        body.get("messaging_product") == "whatsapp",
        "The parameter messaging_product is required.",
        131008,
    )
    to, recipient = body.get("to"), body.get("recipient")
    _require(bool(to or recipient), "The parameter to is required.", 131008)
    if to:
        _require(isinstance(to, str) and bool(_TO.fullmatch(to)), "Invalid parameter to.")
    kind = body.get("type", "text")
    _require(kind in SEND_TYPES, f"Param type must be one of {sorted(SEND_TYPES)}.")
    obj = body.get(kind)
    _require(obj is not None, f"The parameter {kind} is required.", 131008)
    if kind == "text":
        text = obj.get("body") if isinstance(obj, dict) else None
        _require(isinstance(text, str) and text != "", "Param text['body'] is required.", 131008)
        _require(len(text) <= 4096, "Param text['body'] must be at most 4096 characters long.")
    elif kind in MEDIA_TYPES:
        _require(isinstance(obj, dict) and bool(obj.get("id") or obj.get("link")), "id or link.")
        caption = obj.get("caption", "")
        _require(len(caption) <= 1024, f"Param {kind}['caption'] must be at most 1024 characters.")
    elif kind == "interactive":
        _validate_interactive(obj)
    elif kind == "template":
        _require(isinstance(obj, dict) and bool(obj.get("name")), "Template name is required.")
        language = obj.get("language")
        _require(isinstance(language, dict) and bool(language.get("code")), "language.code.")
    context = body.get("context")
    if context is not None:
        _require(
            isinstance(context, dict) and isinstance(context.get("message_id"), str),
            "Param context['message_id'] must be a string.",
        )


def _validate_interactive(obj: Any) -> None:
    _require(isinstance(obj, dict), "Param interactive must be an object.")
    kind = str(obj.get("type", "")).lower()
    body_text = (obj.get("body") or {}).get("text", "")
    _require(len(body_text) <= 1024, "Param interactive['body']['text'] is too long.")
    footer = (obj.get("footer") or {}).get("text", "")
    _require(len(footer) <= 60, "Param interactive['footer']['text'] is too long.")
    action = obj.get("action") or {}
    if kind == "button":
        _require(bool(body_text), "Param interactive['body']['text'] is required.", 131008)
        buttons = action.get("buttons") or []
        _require(1 <= len(buttons) <= 3, "Buttons count should be between 1 and 3.", 131009)
        titles = [((b or {}).get("reply") or {}).get("title", "") for b in buttons]
        ids = [((b or {}).get("reply") or {}).get("id", "") for b in buttons]
        _require(all(0 < len(t) <= 20 for t in titles), "Button title length invalid.", 131009)
        _require(len(set(titles)) == len(titles), "Button titles must be unique.", 131009)
        _require(all(0 < len(i) <= 256 for i in ids), "Button id length invalid.", 131009)
    elif kind == "list":
        _require(0 < len(action.get("button", "")) <= 20, "List button text invalid.", 131009)
        rows = [r for s in action.get("sections") or [] for r in (s or {}).get("rows") or []]
        _require(1 <= len(rows) <= 10, "A list has between 1 and 10 rows.", 131009)
        _require(all(0 < len(r.get("title", "")) <= 24 for r in rows), "Row title.", 131009)
    else:
        _require(kind in {"cta_url", "product", "product_list", "flow"}, "Unknown interactive.")


def success_body(to_or_recipient: str, wamid: str) -> dict[str, Any]:
    return {
        "messaging_product": "whatsapp",
        "contacts": [{"input": to_or_recipient, "wa_id": to_or_recipient.lstrip("+")}],
        "messages": [{"id": wamid}],
    }


def display_number(phone_number_id: str) -> str:
    """A stable, fake display number for a phone-number id (São Paulo, 4004-xxxx)."""
    return "55114004" + phone_number_id[-4:].rjust(4, "0")


def envelope(phone_number_id: str, value: dict[str, Any]) -> dict[str, Any]:
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": WABA_ID,
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": display_number(phone_number_id),
                                "phone_number_id": phone_number_id,
                            },
                            **value,
                        },
                    }
                ],
            }
        ],
    }


def inbound_envelope(
    *, phone_number_id: str, wa_id: str, name: str, message: dict[str, Any]
) -> dict[str, Any]:
    message = {"from": wa_id, "timestamp": str(int(time.time())), **message}
    return envelope(
        phone_number_id,
        {"contacts": [{"profile": {"name": name}, "wa_id": wa_id}], "messages": [message]},
    )


def status_envelope(
    *, phone_number_id: str, wamid: str, status: str, recipient: str, error_code: int | None = None
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": wamid,
        "status": status,
        "timestamp": str(int(time.time())),
        "recipient_id": recipient,
    }
    if status == "sent":
        item["pricing"] = {
            "billable": False,
            "pricing_model": "PMP",
            "type": "free_customer_service",
            "category": "service",
        }
    if status == "failed" and error_code is not None:
        item["errors"] = [webhook_error(error_code)]
    return envelope(phone_number_id, {"statuses": [item]})

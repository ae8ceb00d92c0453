"""Parse Meta WhatsApp Cloud API webhook bodies into frozen, typed values.

Contract:

* ``parse_envelope`` raises ``PayloadError`` only when the body as a whole is unusable: it is not
  JSON, its top level is not an object, ``object`` is not ``"whatsapp_business_account"``, or
  ``entry`` is missing or not a list. For every other input it returns an ``Envelope`` and never
  raises: a malformed entry, change, message or status is skipped (or degraded, e.g. an image
  without its image object becomes ``"unsupported"``) and a short reason is appended to
  ``Envelope.skipped``.
* Every entry, change, message and status is processed, in payload order: Meta batches up to
  1,000 updates in one POST, and reading only index 0 silently loses the rest.
* Only ``field == "messages"`` changes have contacts, messages, statuses and errors parsed; other
  fields are returned with empty tuples and their ``raw_value`` so the caller can store or ignore
  them.
* Reasons in ``skipped`` name a position (``entry[0].changes[1].messages[3]``) and never quote
  values, so they are safe to log: they carry no message text and no phone number.

This module is pure standard library on purpose: it runs in the webhook worker, in tests without
Django, and under property-based fuzzing. The returned dataclasses hold ``raw`` dicts, so they
compare by value but are not hashable.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

__all__ = [
    "KINDS",
    "MEDIA_KINDS",
    "MODIFIER_KINDS",
    "STORED_KINDS",
    "ApiError",
    "Change",
    "Contact",
    "Envelope",
    "InboundMessage",
    "MediaRef",
    "PayloadError",
    "StatusUpdate",
    "check_envelope",
    "parse_envelope",
]

WABA_OBJECT: Final = "whatsapp_business_account"

#: Message kinds stored as such; anything else becomes "unsupported" (raw_type keeps the original).
STORED_KINDS: Final = frozenset(
    [
        "text",
        "image",
        "audio",
        "video",
        "document",
        "sticker",
        "location",
        "contacts",
        "interactive",
        "button",
        "reaction",
        "template",
        "order",
        "system",
        "unsupported",
    ]
)
#: Pseudo-kinds that modify an earlier message (``target_id``) instead of adding one.
MODIFIER_KINDS: Final = frozenset({"revoke", "edit"})
KINDS: Final = STORED_KINDS | MODIFIER_KINDS
MEDIA_KINDS: Final = frozenset({"image", "audio", "video", "document", "sticker"})


# Last second of year 9999: the largest Unix time a datetime can hold. Checking the range up front
# keeps datetime.fromtimestamp from raising OverflowError/OSError on hostile input.
_MAX_UNIX_SECONDS: Final = 253_402_300_799


class PayloadError(ValueError):
    """The body is not a WhatsApp Business Account webhook envelope at all.

    ``reason`` is a short English sentence, safe to log and to return in a 400 response.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Contact:
    """One ``value.contacts[]`` entry. Any identifier may be missing (username/BSUID senders)."""

    wa_id: str | None
    user_id: str | None
    parent_user_id: str | None
    name: str | None
    username: str | None


@dataclass(frozen=True, slots=True)
class ApiError:
    """An error object from ``value.errors``, ``messages[].errors`` or ``statuses[].errors``.

    Classify on ``code`` and ``details``; Meta's titles and wording change between versions.
    """

    code: int | None
    title: str = ""
    message: str = ""
    details: str = ""
    href: str = ""


@dataclass(frozen=True, slots=True)
class MediaRef:
    """A media attachment. ``media_id`` is downloadable for 7 days; ``url`` only when Meta sends it."""

    media_id: str | None
    mime_type: str | None
    sha256: str | None
    url: str | None
    filename: str | None
    caption: str | None
    voice: bool
    animated: bool


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """One inbound ``value.messages[]`` item; ``wamid`` is the idempotency key.

    ``kind`` is in ``KINDS``. For "revoke" and "edit", ``target_id`` is the wamid of the message
    being deleted or edited (for "edit", ``text``/``media`` carry the new content). For
    "reaction", ``reaction_emoji`` is ``""`` when the customer removed the reaction.
    """

    wamid: str
    from_wa_id: str | None
    from_user_id: str | None
    timestamp: datetime
    kind: str
    raw_type: str
    text: str | None
    media: MediaRef | None
    location: dict[str, Any] | None
    shared_contacts: tuple[dict[str, Any], ...]
    reply_id: str | None
    reply_title: str | None
    reaction_to: str | None
    reaction_emoji: str | None
    context_id: str | None
    forwarded: bool
    referral: dict[str, Any] | None
    target_id: str | None
    system_type: str | None
    new_wa_id: str | None
    errors: tuple[ApiError, ...]
    contact: Contact | None
    raw: dict[str, Any]


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    """One ``value.statuses[]`` item about a message we sent.

    ``status`` is lower-cased but not validated: unknown values are passed through and the caller
    decides (the order lives in ``conversations.services.message_update_delivery``, the one
    place that moves a message's status). Dedupe on ``(wamid, status)``.
    """

    wamid: str
    status: str
    timestamp: datetime
    recipient_id: str | None
    recipient_user_id: str | None
    errors: tuple[ApiError, ...]
    pricing_category: str | None
    raw: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Change:
    """One ``entry[].changes[]`` item. Route on ``phone_number_id``; ``waba_id`` is ``entry.id``."""

    waba_id: str | None
    field: str
    phone_number_id: str | None
    display_phone_number: str | None
    contacts: tuple[Contact, ...]
    messages: tuple[InboundMessage, ...]
    statuses: tuple[StatusUpdate, ...]
    errors: tuple[ApiError, ...]
    raw_value: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Envelope:
    """A parsed webhook body: every change in payload order plus why anything was dropped."""

    changes: tuple[Change, ...]
    skipped: tuple[str, ...]

    @property
    def messages(self) -> tuple[InboundMessage, ...]:
        """All inbound messages of all changes, in payload order."""
        return tuple(message for change in self.changes for message in change.messages)

    @property
    def statuses(self) -> tuple[StatusUpdate, ...]:
        """All status updates of all changes, in payload order."""
        return tuple(status for change in self.changes for status in change.statuses)


def parse_envelope(body: bytes | str | dict[str, Any]) -> Envelope:
    """Parse a webhook body (raw bytes, text or already-decoded dict) into an ``Envelope``.

    Raises ``PayloadError`` only for the envelope-level problems listed in the module docstring;
    never raises anything else, whatever the input.
    """
    data = check_envelope(body)
    entries = data["entry"]

    skipped: list[str] = []
    changes: list[Change] = []
    for e, entry in enumerate(entries):
        where = f"entry[{e}]"
        if not isinstance(entry, dict):
            skipped.append(f"{where}: not an object")
            continue
        raw_changes = entry.get("changes")
        if not isinstance(raw_changes, list):
            skipped.append(f"{where}: changes is missing or not a list")
            continue
        waba_id = _ident(entry.get("id"))
        for c, raw_change in enumerate(raw_changes):
            change = _parse_change(raw_change, waba_id, f"{where}.changes[{c}]", skipped)
            if change is not None:
                changes.append(change)
    return Envelope(changes=tuple(changes), skipped=tuple(skipped))


def check_envelope(body: bytes | str | dict[str, Any]) -> dict[str, Any]:
    """Decode the body and check only the envelope; return the decoded object.

    The webhook's acknowledgement path calls this (cheap: one ``json.loads``) to answer 400 for
    bodies that are not envelopes; ``parse_envelope`` does the rest in the worker.
    """
    data = _decode(body)
    if "object" not in data:
        raise PayloadError("object is missing: not a webhook envelope")
    if data["object"] != WABA_OBJECT:
        raise PayloadError("object is not whatsapp_business_account")
    if "entry" not in data:
        raise PayloadError("entry is missing")
    if not isinstance(data["entry"], list):
        raise PayloadError("entry is not a list")
    return data


def _decode(body: object) -> dict[str, Any]:
    if isinstance(body, (bytes, bytearray, memoryview, str)):
        raw = bytes(body) if isinstance(body, memoryview) else body
        try:
            body = json.loads(raw)
        # ValueError covers JSONDecodeError, UnicodeDecodeError and the int-digits limit;
        # RecursionError covers absurdly deep nesting.
        except (ValueError, RecursionError):
            raise PayloadError("body is not valid JSON") from None
    elif not isinstance(body, (dict, list, int, float, type(None))):
        raise PayloadError("body is not bytes, str or a decoded JSON object")
    if not isinstance(body, dict):
        raise PayloadError("top-level JSON value is not an object")
    return body


def _parse_change(
    raw: object, waba_id: str | None, where: str, skipped: list[str]
) -> Change | None:
    if not isinstance(raw, dict):
        skipped.append(f"{where}: not an object")
        return None
    field = raw.get("field")
    if not isinstance(field, str):
        skipped.append(f"{where}: field is missing or not a string")
        field = ""
    value = raw.get("value")
    if not isinstance(value, dict):
        if field == "messages":
            skipped.append(f"{where}: value is missing or not an object")
        value = {}
    metadata = value.get("metadata")
    if not isinstance(metadata, dict):
        metadata = {}
    contacts: list[Contact] = []
    messages: tuple[InboundMessage, ...] = ()
    statuses: tuple[StatusUpdate, ...] = ()
    errors: tuple[ApiError, ...] = ()
    if field == "messages":
        for item in _list(value, "contacts", where, skipped):
            if (contact := _parse_contact(item)) is not None:
                contacts.append(contact)
        index = _ContactIndex(tuple(contacts))
        errors = _parse_errors(value.get("errors"))
        parsed_messages = []
        for m, item in enumerate(_list(value, "messages", where, skipped)):
            message = _parse_message(item, index, f"{where}.messages[{m}]", skipped)
            if message is not None:
                parsed_messages.append(message)
        parsed_statuses = []
        for s, item in enumerate(_list(value, "statuses", where, skipped)):
            status = _parse_status(item, f"{where}.statuses[{s}]", skipped)
            if status is not None:
                parsed_statuses.append(status)
        messages, statuses = tuple(parsed_messages), tuple(parsed_statuses)
    return Change(
        waba_id=waba_id,
        field=field,
        phone_number_id=_ident(metadata.get("phone_number_id")),
        display_phone_number=_ident(metadata.get("display_phone_number")),
        contacts=tuple(contacts),
        messages=messages,
        statuses=statuses,
        errors=errors,
        raw_value=value,
    )


def _parse_contact(raw: object) -> Contact | None:
    if not isinstance(raw, dict):
        return None
    profile = _dict(raw.get("profile"))
    return Contact(
        wa_id=_ident(raw.get("wa_id")),
        user_id=_ident(raw.get("user_id")),
        parent_user_id=_ident(raw.get("parent_user_id")),
        name=_str(profile.get("name")),
        username=_str(profile.get("username")),
    )


class _ContactIndex:
    """Finds a message's sender among ``value.contacts`` without a scan per message: one batched
    change can carry up to 1,000 messages from as many senders."""

    __slots__ = ("_by_user_id", "_by_wa_id", "_only")

    def __init__(self, contacts: tuple[Contact, ...]) -> None:
        self._by_wa_id: dict[str, Contact] = {}
        self._by_user_id: dict[str, Contact] = {}
        for contact in contacts:
            if contact.wa_id is not None:
                self._by_wa_id.setdefault(contact.wa_id, contact)
            if contact.user_id is not None:
                self._by_user_id.setdefault(contact.user_id, contact)
        # Meta sends one contact per single-sender change, sometimes without any identifier we
        # can match on (BSUID-only senders with no "from"); it is still the sender's profile.
        self._only = contacts[0] if len(contacts) == 1 else None

    def find(self, wa_id: str | None, user_id: str | None) -> Contact | None:
        if wa_id is not None and wa_id in self._by_wa_id:
            return self._by_wa_id[wa_id]
        if user_id is not None and user_id in self._by_user_id:
            return self._by_user_id[user_id]
        return self._only


@dataclass(slots=True)
class _Content:
    """The type-specific part of a message; mutable scratch space while parsing."""

    kind: str
    text: str | None = None
    media: MediaRef | None = None
    location: dict[str, Any] | None = None
    shared_contacts: tuple[dict[str, Any], ...] = ()
    reply_id: str | None = None
    reply_title: str | None = None
    reaction_to: str | None = None
    reaction_emoji: str | None = None
    target_id: str | None = None
    system_type: str | None = None
    new_wa_id: str | None = None


def _parse_message(
    raw: object, contacts: _ContactIndex, where: str, skipped: list[str]
) -> InboundMessage | None:
    if not isinstance(raw, dict):
        skipped.append(f"{where}: not an object")
        return None
    wamid = _ident(raw.get("id"))
    if wamid is None:
        skipped.append(f"{where}: no usable id")
        return None
    timestamp = _timestamp(raw.get("timestamp"))
    if timestamp is None:
        skipped.append(f"{where}: timestamp is missing or not Unix seconds")
        return None
    raw_type = _str(raw.get("type")) or ""
    content, problem = _read_content(raw, raw_type, nested=False)
    if not raw_type:
        problem = "type is missing"
    if problem is not None:
        outcome = "stored as unsupported" if content.kind == "unsupported" else "content ignored"
        skipped.append(f"{where}: {problem}; {outcome}")
    context = _dict(raw.get("context"))
    referral = raw.get("referral")
    from_wa_id = _ident(raw.get("from"))
    from_user_id = _ident(raw.get("from_user_id"))
    return InboundMessage(
        wamid=wamid,
        from_wa_id=from_wa_id,
        from_user_id=from_user_id,
        timestamp=timestamp,
        kind=content.kind,
        raw_type=raw_type,
        text=content.text,
        media=content.media,
        location=content.location,
        shared_contacts=content.shared_contacts,
        reply_id=content.reply_id,
        reply_title=content.reply_title,
        reaction_to=content.reaction_to,
        reaction_emoji=content.reaction_emoji,
        context_id=_ident(context.get("id")),
        forwarded=context.get("forwarded") is True or context.get("frequently_forwarded") is True,
        referral=referral if isinstance(referral, dict) else None,
        target_id=content.target_id,
        system_type=content.system_type,
        new_wa_id=content.new_wa_id,
        errors=_parse_errors(raw.get("errors")),
        contact=contacts.find(from_wa_id, from_user_id),
        raw=raw,
    )


def _read_content(
    message: dict[str, Any], raw_type: str, *, nested: bool
) -> tuple[_Content, str | None]:
    """Read the ``message[raw_type]`` object into a ``_Content``.

    Returns the content and, when part of it could not be read, a reason that quotes no values
    (the message is then "unsupported", or an edit without new content). ``nested`` marks the
    inner message of an edit, which may not itself be a revoke or an edit; that also bounds the
    recursion to one level.
    """
    if raw_type not in KINDS or raw_type == "unsupported":
        return _Content("unsupported"), None
    if nested and raw_type in MODIFIER_KINDS:
        return _Content("unsupported"), f"edited message is itself a {raw_type}"
    if raw_type == "template":
        # Not a documented inbound type; nothing to extract beyond what raw keeps.
        return _Content("template"), None
    body = message.get(raw_type)
    if raw_type == "contacts":
        if not isinstance(body, list):
            return _Content("unsupported"), "contacts is not a list"
        return _Content(
            "contacts", shared_contacts=tuple(c for c in body if isinstance(c, dict))
        ), None
    if not isinstance(body, dict):
        return _Content("unsupported"), f"{raw_type} object is missing"

    if raw_type in MEDIA_KINDS:
        caption = _str(body.get("caption"))
        media = MediaRef(
            media_id=_ident(body.get("id")),
            mime_type=_str(body.get("mime_type")),
            sha256=_str(body.get("sha256")),
            url=_str(body.get("url")),
            filename=_str(body.get("filename")),
            caption=caption,
            voice=body.get("voice") is True,
            animated=body.get("animated") is True,
        )
        return _Content(raw_type, text=caption, media=media), None
    if raw_type == "text":
        text = _str(body.get("body"))
        if text is None:
            return _Content("unsupported"), "text body is missing"
        return _Content("text", text=text), None
    if raw_type == "location":
        location = {
            "latitude": _coordinate(body.get("latitude")),
            "longitude": _coordinate(body.get("longitude")),
            "name": _str(body.get("name")),
            "address": _str(body.get("address")),
            "url": _str(body.get("url")),
        }
        return _Content("location", location=location), None
    if raw_type == "interactive":
        return _read_interactive(body), None
    if raw_type == "button":
        title = _str(body.get("text"))
        return _Content(
            "button", text=title, reply_id=_ident(body.get("payload")), reply_title=title
        ), None
    if raw_type == "reaction":
        target = _ident(body.get("message_id"))
        if target is None:
            return _Content("unsupported"), "reaction without message_id"
        # A removed reaction arrives with "" or with no emoji at all; both mean "un-react".
        return _Content(
            "reaction", reaction_to=target, reaction_emoji=_str(body.get("emoji")) or ""
        ), None
    if raw_type == "order":
        return _Content("order", text=_str(body.get("text"))), None
    if raw_type == "system":
        return _Content(
            "system",
            text=_str(body.get("body")),
            system_type=_str(body.get("type")),
            new_wa_id=_ident(body.get("wa_id")),
        ), None

    target = _ident(body.get("original_message_id"))
    if target is None:
        return _Content("unsupported"), f"{raw_type} without original_message_id"
    if raw_type == "revoke":
        return _Content("revoke", target_id=target), None
    inner = body.get("message")
    if not isinstance(inner, dict):
        return _Content("edit", target_id=target), None
    content, problem = _read_content(inner, _str(inner.get("type")) or "", nested=True)
    # Whatever the new content is, the message stays an edit of its target.
    return dataclasses.replace(content, kind="edit", target_id=target), problem


def _read_interactive(body: dict[str, Any]) -> _Content:
    reply_type = body.get("type")
    if reply_type in ("button_reply", "list_reply"):
        reply = _dict(body.get(reply_type))
        title = _str(reply.get("title"))
        return _Content(
            "interactive", text=title, reply_id=_ident(reply.get("id")), reply_title=title
        )
    if reply_type == "nfm_reply":
        # A completed Flow: the answers are in nfm_reply.response_json, kept in raw.
        return _Content("interactive", text=_str(_dict(body.get("nfm_reply")).get("body")))
    return _Content("interactive")


def _parse_status(raw: object, where: str, skipped: list[str]) -> StatusUpdate | None:
    if not isinstance(raw, dict):
        skipped.append(f"{where}: not an object")
        return None
    wamid = _ident(raw.get("id"))
    if wamid is None:
        skipped.append(f"{where}: no usable id")
        return None
    status = _str(raw.get("status"))
    if not status:
        skipped.append(f"{where}: status is missing")
        return None
    timestamp = _timestamp(raw.get("timestamp"))
    if timestamp is None:
        skipped.append(f"{where}: timestamp is missing or not Unix seconds")
        return None
    return StatusUpdate(
        wamid=wamid,
        status=status.lower(),
        timestamp=timestamp,
        recipient_id=_ident(raw.get("recipient_id")),
        recipient_user_id=_ident(raw.get("recipient_user_id")),
        errors=_parse_errors(raw.get("errors")),
        pricing_category=_str(_dict(raw.get("pricing")).get("category")),
        raw=raw,
    )


def _parse_errors(raw: object) -> tuple[ApiError, ...]:
    if not isinstance(raw, list):
        return ()
    errors = []
    for item in raw:
        if not isinstance(item, dict):
            continue
        code = item.get("code")
        if isinstance(code, str) and code.isascii() and code.isdigit() and len(code) < 10:
            code = int(code)
        # Meta nests details in error_data; older payloads (netflie fixture) put it at top level.
        details = _str(_dict(item.get("error_data")).get("details")) or _str(item.get("details"))
        errors.append(
            ApiError(
                code=code if isinstance(code, int) and not isinstance(code, bool) else None,
                title=_str(item.get("title")) or "",
                message=_str(item.get("message")) or "",
                details=details or "",
                href=_str(item.get("href")) or "",
            )
        )
    return tuple(errors)


def _list(value: dict[str, Any], key: str, where: str, skipped: list[str]) -> list[Any]:
    """``value[key]`` when it is a list; absent means empty, anything else is noted and empty."""
    items = value.get(key)
    if items is None:
        return []
    if not isinstance(items, list):
        skipped.append(f"{where}: {key} is not a list")
        return []
    return items


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _ident(value: object) -> str | None:
    """An identifier: a non-empty string, or an integer some producers send instead."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return str(value)
        except ValueError:  # beyond sys.get_int_max_str_digits(); no real id is that long
            return None
    return None


def _timestamp(value: object) -> datetime | None:
    """Unix seconds as Meta's string or a plain integer, as an aware UTC datetime."""
    if isinstance(value, str):
        value = value.strip()
        if not (value.isascii() and value.isdigit() and len(value) <= 12):
            return None
        seconds = int(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        seconds = value
    elif isinstance(value, float) and math.isfinite(value):
        seconds = int(value)
    else:
        return None
    if not 0 <= seconds <= _MAX_UNIX_SECONDS:
        return None
    return datetime.fromtimestamp(seconds, tz=UTC)


def _coordinate(value: object) -> float | None:
    """A latitude/longitude as a finite float; placeholders and junk become None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if isinstance(value, (int, float)):
        try:
            number = float(value)
        except OverflowError:
            return None
        return number if math.isfinite(number) else None
    return None

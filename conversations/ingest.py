"""What the channel brings in, many at a time: customers, conversations, messages, statuses.

The inbound path applies a batch of webhook events with a few queries per batch instead of a
few per message. These functions hold the rules; the one-at-a-time services
(``services.customer_resolve``, ``conversation_get_or_open``, ``conversation_open``,
``message_record_inbound``, ``message_update_delivery``, ``protocol_next``) call them with a
list of one, so each rule is written once.

Every function runs inside the caller's transaction. Each one that inserts rows a concurrent
worker may insert too (the same customer, the open conversation of the same customer, the same
wamid) retries on its own: the insert is in a savepoint, and after a lost race the next pass
reads the winner's row. Contracts per function below.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from conversations import events, metrics
from conversations.identity import identity_index
from conversations.models import (
    Conversation,
    ConversationEvent,
    Customer,
    Message,
    ProtocolCounter,
)
from conversations.phones import normalize_phone
from ispsupport.bulk import created_in_bulk

# Rows per UPDATE … CASE statement: keeps the statement under SQLite's variable limit.
_UPDATE_CHUNK = 200
_RACE_ATTEMPTS = 3


class LostRace(IntegrityError):
    """Concurrent writers kept winning the same insert for every attempt (not expected)."""


# --- Protocol numbers ---------------------------------------------------------------------------

_PROTOCOL_SQL = (
    "INSERT INTO {table} (day, value) VALUES (%s, %s) "
    "ON CONFLICT (day) DO UPDATE SET value = {table}.value + %s "
    "RETURNING value"
)


def protocols_next(*, count: int, now: datetime | None = None) -> list[str]:
    """``count`` new protocol numbers: the São Paulo date (YYYYMMDD) + a 6-digit daily sequence.

    One atomic upsert reserves the whole range (SQLite ≥ 3.35 and PostgreSQL), so concurrent
    callers always get distinct, increasing numbers; numbers are unique and sort by time. The
    day's counter row stays locked until the caller's transaction ends: call it late.
    """
    if count < 1:
        return []
    local_day = timezone.localtime(now or timezone.now()).date()
    table = connection.ops.quote_name(ProtocolCounter._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(_PROTOCOL_SQL.format(table=table), [local_day, count, count])
        (last,) = cursor.fetchone()
    return [f"{local_day:%Y%m%d}{value:06d}" for value in range(last - count + 1, last + 1)]


# --- Customers ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ContactIdentity:
    """Who wrote, as Meta describes them: a ``wa_id`` and/or a BSUID, and their profile."""

    wa_id: str | None = None
    bsuid: str | None = None
    parent_bsuid: str = ""
    name: str = ""
    username: str = ""

    @property
    def identified(self) -> bool:
        return bool(self.bsuid or self.wa_id)


@dataclass(slots=True)
class _Keys:
    """A contact's normalised phone and the blind indexes it is looked up by."""

    phone: str | None
    bsuid: str | None
    phone_index: str | None
    wa_id_index: str | None  # only for a wa_id that is not a plausible phone number


def _keys(contact: ContactIdentity) -> _Keys:
    phone = normalize_phone(contact.wa_id) if contact.wa_id else None
    return _Keys(
        phone=phone,
        bsuid=identity_index("bsuid", contact.bsuid) if contact.bsuid else None,
        phone_index=identity_index("phone", phone) if phone else None,
        wa_id_index=identity_index("wa_id", contact.wa_id) if contact.wa_id and not phone else None,
    )


def customer_identity_changes(
    customer: Customer, contact: ContactIdentity, phone: str | None
) -> dict[str, Any]:
    """What a known customer learns from a new message: identifiers the row was missing, the
    latest ``wa_id`` (the one to reply to), parent BSUID, profile name and username."""
    changes: dict[str, Any] = {}
    if contact.bsuid and not customer.bsuid:
        changes["bsuid"] = contact.bsuid
    if contact.parent_bsuid and customer.parent_bsuid != contact.parent_bsuid:
        changes["parent_bsuid"] = contact.parent_bsuid
    if contact.wa_id and customer.wa_id != contact.wa_id:
        changes["wa_id"] = contact.wa_id
    if phone and not customer.phone_e164:
        changes["phone_e164"] = phone
    if contact.name and customer.name != contact.name[:200]:
        changes["name"] = contact.name[:200]
    if contact.username and customer.username != contact.username[:100]:
        changes["username"] = contact.username[:100]
    return changes


class _CustomerMatcher:
    """Finds each contact's customer among the rows read and the ones planned in this call.

    The precedence is the rule: the BSUID first, then the canonical phone (so 9th-digit
    variants of a Brazilian number are one customer), then a raw ``wa_id`` that is no phone.
    """

    def __init__(self, rows: Sequence[Customer]) -> None:
        self.by_bsuid: dict[str, Customer] = {}
        self.by_phone: dict[str, Customer] = {}
        self.by_wa_id: dict[str, Customer] = {}
        for row in rows:
            self.remember(row)

    def remember(self, customer: Customer) -> None:
        for index, table in (
            (_bidx(customer, "bsuid"), self.by_bsuid),
            (_bidx(customer, "phone_e164"), self.by_phone),
            (_bidx(customer, "wa_id"), self.by_wa_id),
        ):
            if index is not None:
                table.setdefault(index, customer)

    def forget(self, customer: Customer, field: str) -> None:
        index = _bidx(customer, field)
        table = {"bsuid": self.by_bsuid, "phone_e164": self.by_phone, "wa_id": self.by_wa_id}
        if index is not None and table[field].get(index) is customer:
            del table[field][index]

    def find(self, keys: _Keys) -> Customer | None:
        if keys.bsuid and (found := self.by_bsuid.get(keys.bsuid)) is not None:
            return found
        if keys.phone_index:
            return self.by_phone.get(keys.phone_index)
        if keys.wa_id_index:
            return self.by_wa_id.get(keys.wa_id_index)
        return None


def _bidx(customer: Customer, field: str) -> str | None:
    index_field = {"bsuid": "bsuid_bidx", "phone_e164": "phone_bidx", "wa_id": "wa_id_bidx"}[field]
    return Customer._meta.get_field(index_field).compute(getattr(customer, field))


def customers_resolve(*, contacts: Sequence[ContactIdentity]) -> list[Customer]:
    """The customer behind each contact, found or created; the same object for one person.

    Every contact must be ``identified`` (a ``wa_id`` or a BSUID). One query reads every
    customer the contacts could be (blind indexes, nothing decrypted to search); customers
    not found are created in one insert (with their audit entries), and what known customers
    learn (``customer_identity_changes``) is written with one UPDATE per set of changed
    fields. Contacts are applied in order, so the last one's profile name wins. A lost insert
    race (another worker created one of them) is resolved by reading again; an update that
    would give a customer an identifier another row owns (two rows for one person, for staff
    to merge) is left out for that customer, who keeps what it had.
    """
    if not all(contact.identified for contact in contacts):
        raise ValueError("every contact needs a wa_id or a BSUID")
    keys = [_keys(contact) for contact in contacts]
    for _attempt in range(_RACE_ATTEMPTS):
        matcher = _CustomerMatcher(_customers_read(keys))
        resolved: list[Customer] = []
        new: list[Customer] = []
        changed: dict[int, tuple[Customer, dict[str, Any]]] = {}  # id(customer) → (row, old)
        for contact, key in zip(contacts, keys, strict=True):
            customer = matcher.find(key)
            if customer is None:
                customer = Customer(
                    wa_id=contact.wa_id or None,
                    bsuid=contact.bsuid or None,
                    parent_bsuid=contact.parent_bsuid or "",
                    phone_e164=key.phone,
                    name=(contact.name or "")[:200],
                    username=(contact.username or "")[:100],
                )
                new.append(customer)
                matcher.remember(customer)
            else:
                changes = customer_identity_changes(customer, contact, key.phone)
                if changes:
                    # A row read from the database is updated below; one planned in this
                    # call is simply inserted with what it learned.
                    old = changed.setdefault(id(customer), (customer, {}))[1] if customer.pk else {}
                    for field, value in changes.items():
                        old.setdefault(field, getattr(customer, field))
                        if field in ("bsuid", "phone_e164", "wa_id"):
                            matcher.forget(customer, field)
                        setattr(customer, field, value)
                    matcher.remember(customer)
            resolved.append(customer)
        if new:
            # Inserted in one order whatever the batch's order, so two workers creating the
            # same new customers wait for each other on the unique indexes instead of each
            # holding one the other needs (a deadlock).
            new.sort(key=_insert_order)
            try:
                with transaction.atomic():
                    Customer.objects.bulk_create(new)
            except IntegrityError:
                continue  # somebody created one of them meanwhile: read again
            created_in_bulk(new)
        _customers_write_changes(list(changed.values()))
        return resolved
    raise LostRace("could not resolve customers after concurrent inserts")


def _insert_order(customer: Customer) -> tuple[str, str, str]:
    return (customer.wa_id or "", customer.bsuid or "", customer.phone_e164 or "")


def _customers_read(keys: Sequence[_Keys]) -> list[Customer]:
    bsuids = sorted({k.bsuid for k in keys if k.bsuid})
    phones = sorted({k.phone_index for k in keys if k.phone_index})
    wa_ids = sorted({k.wa_id_index for k in keys if k.wa_id_index})
    query = Q(pk__in=[])
    # The indexes were computed already: compare them directly (customer_identity_q would
    # normalise and hash again).
    if bsuids:
        query |= Q(bsuid_bidx__in=bsuids)
    if phones:
        query |= Q(phone_bidx__in=phones)
    if wa_ids:
        query |= Q(wa_id_bidx__in=wa_ids)
    return list(Customer.objects.filter(query).order_by("pk"))


def _customers_write_changes(entries: Sequence[tuple[Customer, dict[str, Any]]]) -> None:
    """Write what each known customer learned: one UPDATE per set of changed fields; a row
    whose update is refused (an identifier another row owns) keeps its old values."""
    groups: dict[frozenset[str], list[tuple[Customer, dict[str, Any]]]] = {}
    for customer, old in entries:
        groups.setdefault(frozenset(old), []).append((customer, old))
    now = timezone.now()
    for fields, group in groups.items():
        names = [*sorted(fields), "updated_at"]
        for customer, _old in group:
            customer.updated_at = now
        try:
            with transaction.atomic():
                # Customer.objects.bulk_update() writes the blind indexes of the fields too.
                Customer.objects.bulk_update([c for c, _ in group], names)
            continue
        except IntegrityError:
            pass
        for customer, old in group:
            try:
                with transaction.atomic():
                    Customer.objects.filter(pk=customer.pk).update(
                        **{field: getattr(customer, field) for field in fields}, updated_at=now
                    )
            except IntegrityError:
                for field, value in old.items():
                    setattr(customer, field, value)
                for index_field in ("wa_id_bidx", "bsuid_bidx", "phone_bidx", "name_bidx"):
                    field = Customer._meta.get_field(index_field)
                    field.pre_save(customer, False)


# --- Conversations ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Opening:
    """A conversation to open: whose, on which of our numbers, and the request behind it."""

    customer: Customer
    business_number_id: str = ""
    team_id: int | None = None
    priority: int = Conversation.Priority.NORMAL
    opened_at: datetime | None = None
    request_id: str = ""


def conversations_open(*, openings: Sequence[Opening]) -> list[Conversation]:
    """Open one conversation per opening (state bot, a fresh protocol each, an "opened" event,
    the console told after commit). Raises ``IntegrityError`` when a customer already has an
    open conversation: the database's one-open-conversation constraint decides, so two
    concurrent openings cannot both succeed. Call inside ``transaction.atomic``.
    """
    if not openings:
        return []
    now = timezone.now()
    by_day: dict[Any, list[int]] = {}
    for position, opening in enumerate(openings):
        day = timezone.localtime(opening.opened_at or now).date()
        by_day.setdefault(day, []).append(position)
    protocols: list[str] = [""] * len(openings)
    for positions in by_day.values():
        opened_at = openings[positions[0]].opened_at
        for position, protocol in zip(
            positions, protocols_next(count=len(positions), now=opened_at), strict=True
        ):
            protocols[position] = protocol
    conversations = [
        Conversation(
            customer=opening.customer,
            protocol=protocol,
            team_id=opening.team_id,
            priority=opening.priority,
            business_number_id=opening.business_number_id,
            opened_at=opening.opened_at or now,
            last_message_at=opening.opened_at or now,
        )
        for opening, protocol in zip(openings, protocols, strict=True)
    ]
    Conversation.objects.bulk_create(conversations)
    created_in_bulk(conversations)
    opened = [
        ConversationEvent(conversation=conv, kind=ConversationEvent.Kind.OPENED, data={})
        for conv in conversations
    ]
    ConversationEvent.objects.bulk_create(opened)
    created_in_bulk(opened)
    for conv, opening in zip(conversations, openings, strict=True):
        events.publish_conversation(
            conversation_id=conv.pk, kind="conversation.opened", request_id=opening.request_id
        )
    return conversations


def conversations_get_or_open(*, openings: Sequence[Opening]) -> list[tuple[Conversation, bool]]:
    """Each opening's customer's open conversation, opening one where there is none.

    Returns ``(conversation, opened)`` per opening, in order (the same object for one
    customer; its ``customer`` is the given object). One query finds the open ones, then
    ``conversations_open`` opens the rest (by the first opening of each customer). A lost
    race (another worker opened one meanwhile) is resolved by reading again.
    """
    customer_ids = [opening.customer.pk for opening in openings]
    for _attempt in range(_RACE_ATTEMPTS):
        current = {
            conv.customer_id: conv
            for conv in Conversation.objects.filter(customer_id__in=set(customer_ids)).exclude(
                state=Conversation.State.CLOSED
            )
        }
        missing: dict[int, Opening] = {}
        for opening in openings:
            if opening.customer.pk not in current:
                missing.setdefault(opening.customer.pk, opening)
        opened: dict[int, Conversation] = {}
        if missing:
            try:
                with transaction.atomic():
                    # By customer, in one order for every worker (see customers_resolve).
                    conversations = conversations_open(
                        openings=sorted(missing.values(), key=lambda o: o.customer.pk)
                    )
            except IntegrityError:
                if (
                    Conversation.objects.filter(customer_id__in=list(missing))
                    .exclude(state=Conversation.State.CLOSED)
                    .exists()
                ):
                    continue  # opened concurrently: take it on the next pass
                raise
            opened = {conv.customer_id: conv for conv in conversations}
        results = []
        for opening in openings:
            conv = current.get(opening.customer.pk) or opened[opening.customer.pk]
            conv.customer = opening.customer
            results.append((conv, opening.customer.pk in opened))
        return results
    raise LostRace("could not open conversations after concurrent openings")


# --- Messages -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MediaInfo:
    media_id: str = ""
    mime_type: str = ""
    sha256: str = ""
    size: int | None = None
    filename: str = ""


@dataclass(frozen=True, slots=True)
class InboundRecord:
    """One customer message to store (see ``messages_record_inbound``)."""

    conversation: Conversation
    wamid: str
    type: str
    timestamp: datetime
    text: str = ""
    media: MediaInfo | None = None
    context_wamid: str = ""
    payload: dict[str, Any] | None = None
    errors: list[dict[str, Any]] | None = None
    count_unread: bool = True
    request_id: str = ""


def messages_record_inbound(*, records: Sequence[InboundRecord]) -> list[tuple[Message, bool]]:
    """Store customers' messages once per wamid; return ``(message, created)`` per record.

    A wamid already stored (Meta retries for 7 days), or repeated in ``records``, returns the
    stored row unchanged. New messages are inserted together; each conversation is then
    updated once (``conversations_note_inbound``) and the console told after commit. A lost
    race (another worker stored one of the wamids meanwhile) is resolved by reading again.
    """
    for _attempt in range(_RACE_ATTEMPTS):
        wamids = {record.wamid for record in records}
        stored = {m.wamid: m for m in Message.objects.filter(wamid__in=wamids)}
        contexts = {r.context_wamid for r in records if r.context_wamid}
        replied = {wamid: m.pk for wamid, m in stored.items() if wamid in contexts}
        if contexts - wamids:
            replied.update(
                Message.objects.filter(wamid__in=contexts - wamids).values_list("wamid", "pk")
            )
        planned: dict[str, Message] = {}
        results: list[tuple[Message, bool] | None] = []
        new: list[tuple[InboundRecord, Message]] = []
        links: list[tuple[Message, Message]] = []  # (reply, earlier message of this call)
        for record in records:
            if record.wamid in stored:
                results.append((stored[record.wamid], False))
                continue
            if record.wamid in planned:
                results.append((planned[record.wamid], False))
                continue
            message = _inbound_message(record, replied.get(record.context_wamid))
            if record.context_wamid in planned:
                links.append((message, planned[record.context_wamid]))
            planned[record.wamid] = message
            new.append((record, message))
            results.append(None)
        if not new:
            return [result for result in results if result is not None]
        try:
            with transaction.atomic():
                messages = [message for _record, message in new]
                Message.objects.bulk_create(messages)
                created_in_bulk(messages)
                if links:  # replies to a message stored a moment ago in this same call
                    for message, target in links:
                        message.reply_to_id = target.pk
                    Message.objects.bulk_update([m for m, _target in links], ["reply_to"])
                conversations_note_inbound(records=new)
                for record, message in new:
                    data: dict[str, Any] = {
                        "message_id": message.pk,
                        "direction": Message.Direction.INBOUND,
                    }
                    events.publish_conversation(
                        conversation_id=record.conversation.pk,
                        kind="message.new",
                        data=data,
                        request_id=record.request_id,
                    )
        except IntegrityError:
            continue  # one of the wamids was committed by a concurrent worker: read again
        fresh = iter(new)
        return [result if result is not None else (next(fresh)[1], True) for result in results]
    raise LostRace("could not store messages after concurrent inserts")


def _inbound_message(record: InboundRecord, reply_to_id: int | None) -> Message:
    kind = record.type if record.type in Message.Type.values else Message.Type.UNSUPPORTED
    media = record.media or MediaInfo()
    first_error = (record.errors or [{}])[0] if record.errors else {}
    return Message(
        conversation=record.conversation,
        wamid=record.wamid,
        direction=Message.Direction.INBOUND,
        sender_kind=Message.SenderKind.CUSTOMER,
        type=kind,
        text=record.text or "",
        media_id=media.media_id,
        media_mime_type=media.mime_type,
        media_sha256=media.sha256,
        media_size=media.size,
        media_filename=media.filename[:255],
        reply_to_id=reply_to_id,
        context_wamid=record.context_wamid or "",
        payload=record.payload or {},
        status=Message.Status.RECEIVED,
        error_code=first_error.get("code"),
        error_title=(first_error.get("title") or "")[:255],
        error_details=first_error.get("details") or "",
        whatsapp_timestamp=record.timestamp,
        created_at=record.timestamp,
    )


def conversations_note_inbound(*, records: Sequence[tuple[InboundRecord, Message]]) -> None:
    """Move each conversation's clocks for new customer messages: one UPDATE per 200.

    Per conversation, judged on the stored row inside the statement (no read, no lock):
    the last customer message time only moves forward (late deliveries never shorten the
    24-hour window) and clears ``template_required`` when it does; the last message becomes
    the newest of these when it is not older than the current one; unread counts grow by the
    messages somebody must read (not reactions, not ``count_unread=False``).
    """
    per_conversation: dict[int, list[Any]] = {}  # pk → [newest time, its message pk, unread]
    for record, message in records:
        entry = per_conversation.setdefault(record.conversation.pk, [record.timestamp, None, 0])
        if record.timestamp >= entry[0]:
            entry[0], entry[1] = record.timestamp, message.pk
        if record.count_unread and message.type != Message.Type.REACTION:
            entry[2] += 1
    items = list(per_conversation.items())
    for start in range(0, len(items), _UPDATE_CHUNK):
        chunk = items[start : start + _UPDATE_CHUNK]
        params: list[Any] = []
        for pk, (newest, message_pk, unread) in chunk:
            params += [pk, connection.ops.adapt_datetimefield_value(newest), message_pk, unread]
        with connection.cursor() as cursor:
            cursor.execute(_NOTE_INBOUND_SQL.format(rows=_note_rows(len(chunk))), params)


def _note_rows(count: int) -> str:
    first = "SELECT %s AS id, %s AS at, %s AS msg, %s AS unread"
    return " UNION ALL ".join([first] + ["SELECT %s, %s, %s, %s"] * (count - 1))


# Raw SQL on purpose: the same statement through Case/When costs more CPU to build than the
# database spends running it (measured: bench/webhook_process_profile.py). One row per
# conversation in ``v``; every condition reads the row as it is stored, inside the statement.
# UPDATE … FROM needs PostgreSQL, or SQLite ≥ 3.33.
_NOTE_INBOUND_SQL = """
UPDATE conversations_conversation SET
    last_customer_message_at = CASE
        WHEN last_customer_message_at IS NULL OR last_customer_message_at < v.at THEN v.at
        ELSE last_customer_message_at END,
    template_required = CASE
        WHEN last_customer_message_at IS NULL OR last_customer_message_at < v.at THEN FALSE
        ELSE template_required END,
    last_message_at = CASE
        WHEN last_message_at IS NULL OR last_message_id IS NULL OR last_message_at <= v.at
        THEN v.at ELSE last_message_at END,
    last_message_id = CASE
        WHEN last_message_at IS NULL OR last_message_id IS NULL OR last_message_at <= v.at
        THEN v.msg ELSE last_message_id END,
    unread_count = unread_count + v.unread
FROM ({rows}) AS v
WHERE conversations_conversation.id = v.id
"""


# --- Delivery statuses of our messages ----------------------------------------------------------

# Order of delivery states: a status may only replace one of lower rank.
_DELIVERY_RANK = {
    Message.Status.PENDING: 0,
    Message.Status.SENT: 1,
    Message.Status.DELIVERED: 2,
    Message.Status.READ: 3,
    Message.Status.PLAYED: 4,
}
_TIMESTAMP_FIELD = {
    Message.Status.SENT: "sent_at",
    Message.Status.DELIVERED: "delivered_at",
    Message.Status.READ: "read_at",
}
_DELIVERY_FIELDS = ["status", "sent_at", "delivered_at", "read_at"]
_FAILURE_FIELDS = ["error_code", "error_title", "error_details", "failed_at"]


@dataclass(frozen=True, slots=True)
class DeliveryUpdate:
    """A status Meta reported for one of our messages (``wamid``)."""

    wamid: str
    status: str
    timestamp: datetime | None = None
    error_code: int | None = None
    error_title: str = ""
    error_details: str = ""
    request_id: str = ""  # the request that reported it (for the console's event)


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    changed: bool  # the message's status moved
    known: bool  # a message with this wamid exists (in either direction)
    conversation_id: int | None = None


def delivery_may_replace(current: str, new: str) -> bool:
    """Monotonic: pending < sent < delivered < read < played; ``failed`` is terminal and
    replaces only pending/sent/delivered; anything else replaces nothing."""
    if new == Message.Status.FAILED:
        return current in (Message.Status.PENDING, Message.Status.SENT, Message.Status.DELIVERED)
    if new not in _DELIVERY_RANK or current not in _DELIVERY_RANK:
        return False
    return _DELIVERY_RANK[current] < _DELIVERY_RANK[new]


def messages_update_delivery(*, updates: Sequence[DeliveryUpdate]) -> list[DeliveryResult]:
    """Move outbound messages' delivery states forward, in the order given; one result each.

    ``delivery_may_replace`` decides; a late ``sent`` after ``read`` changes nothing, and
    ``read`` without ``delivered`` fills the delivered time too (each milestone at most once).
    The messages are read and locked in one query (``SELECT … FOR UPDATE``, in id order), so
    two workers applying statuses at once cannot move a message backwards, and written with
    one UPDATE per kind of change. The console is told of every change after commit.
    """
    if not updates:
        return []
    with transaction.atomic():
        return _messages_update_delivery_locked(updates)


def _messages_update_delivery_locked(updates: Sequence[DeliveryUpdate]) -> list[DeliveryResult]:
    rows = {
        m.wamid: m
        for m in Message.objects.select_for_update()
        .filter(wamid__in={u.wamid for u in updates})
        .only("pk", "wamid", "direction", "status", "conversation_id", *_DELIVERY_FIELDS[1:])
        .order_by("pk")
    }
    results: list[DeliveryResult] = []
    changed: dict[int, Message] = {}
    failed: dict[int, Message] = {}
    published: list[tuple[Message, DeliveryUpdate]] = []
    for update in updates:
        message = rows.get(update.wamid)
        if (
            message is None
            or message.direction != Message.Direction.OUTBOUND
            or not delivery_may_replace(message.status, update.status)
        ):
            results.append(
                DeliveryResult(
                    changed=False,
                    known=message is not None,
                    conversation_id=message.conversation_id if message else None,
                )
            )
            continue
        at = update.timestamp or timezone.now()
        message.status = update.status
        if update.status == Message.Status.FAILED:
            message.error_code = update.error_code
            message.error_title = update.error_title[:255]
            message.error_details = update.error_details
            message.failed_at = at
            failed[message.pk] = message
        else:
            rank = _DELIVERY_RANK[update.status]
            for milestone, field in _TIMESTAMP_FIELD.items():
                if _DELIVERY_RANK[milestone] <= rank and getattr(message, field) is None:
                    setattr(message, field, at)
        changed[message.pk] = message
        published.append((message, update))
        results.append(
            DeliveryResult(changed=True, known=True, conversation_id=message.conversation_id)
        )
    plain = [m for pk, m in changed.items() if pk not in failed]
    if plain:
        Message.objects.bulk_update(plain, _DELIVERY_FIELDS)
    if failed:
        Message.objects.bulk_update(list(failed.values()), _DELIVERY_FIELDS + _FAILURE_FIELDS)
    for message, update in published:
        delivery_publish(
            message.conversation_id, message.pk, update.status, request_id=update.request_id
        )
    return results


def delivery_publish(
    conversation_id: int, message_id: int, status: str, *, request_id: str = ""
) -> None:
    """Count a message reaching ``status`` and tell the console (after commit)."""
    metrics.status_reached(status)
    events.publish_conversation(
        conversation_id=conversation_id,
        kind="message.status",
        data={"message_id": message_id, "status": status},
        request_id=request_id,
    )


__all__ = [
    "ContactIdentity",
    "DeliveryResult",
    "DeliveryUpdate",
    "InboundRecord",
    "LostRace",
    "MediaInfo",
    "Opening",
    "conversations_get_or_open",
    "conversations_note_inbound",
    "conversations_open",
    "customer_identity_changes",
    "customers_resolve",
    "delivery_may_replace",
    "delivery_publish",
    "messages_record_inbound",
    "messages_update_delivery",
    "protocols_next",
]

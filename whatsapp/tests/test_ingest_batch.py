"""The webhook drain applies a batch of events as a batch: its cost per batch, and what holds
when several workers drain at once or one message of a batch cannot be stored."""

from __future__ import annotations

import hashlib
import json
import threading
import time

import pytest
from django.db import connection

from conftest import on_postgres
from conversations.models import Conversation, Customer, LiveEvent, Message
from conversations.tests.factories import ConversationFactory, CustomerFactory
from whatsapp import inbound
from whatsapp.models import WebhookEvent
from whatsapp.testing import envelope, signed_post, text_message

pytestmark = pytest.mark.django_db

# Retried by Meta three days later: goes to a person, so no bot runs in these tests.
STALE = int(time.time()) - 3 * 24 * 3600


def _store(payload: dict) -> WebhookEvent:
    """An acknowledged event, as ``event_receive`` leaves it (without kicking a worker)."""
    body = json.dumps(payload)
    return WebhookEvent.objects.create(
        body=body, body_sha256=hashlib.sha256(body.encode()).hexdigest()
    )


def _new_customers_batch(client, count: int, *, prefix: str) -> None:
    for i in range(count):
        message = text_message(wa_id=f"55219{prefix}{i:05d}", text=f"sem sinal {i}")
        assert signed_post(client, envelope(messages=[message])).status_code == 200


# --- cost per batch: a guard against one query per message coming back ----------------------

# Queries of one drain, whatever the batch's size (measured 32-36 on SQLite and PostgreSQL
# for 6 messages and for 60; before batching, one message cost about 29).
BATCH_QUERIES = 45


@pytest.mark.parametrize("count", [6, 60])
def test_a_batch_of_new_customers_costs_the_same_few_queries_whatever_its_size(
    client, django_assert_max_num_queries, count
):
    _new_customers_batch(client, count, prefix="1")
    with django_assert_max_num_queries(BATCH_QUERIES):
        assert inbound.events_process_pending(batch_size=100) == count
    assert Customer.objects.count() == count
    assert Conversation.objects.count() == count
    assert Message.objects.filter(direction=Message.Direction.INBOUND).count() == count
    assert set(WebhookEvent.objects.values_list("status", flat=True)) == {"processed"}


# With the commit's work included: the console's live events (stored and sent per batch;
# measured 27-28 for 5 messages and for 50).
AFTER_COMMIT_QUERIES = 40


@pytest.mark.parametrize("count", [5, 50])
def test_live_events_of_a_batch_are_stored_and_sent_together(
    client, django_assert_max_num_queries, django_capture_on_commit_callbacks, count
):
    # Conversations already with a person: no bot follows, only the console is told.
    waiting = [
        ConversationFactory(
            customer=CustomerFactory(wa_id=f"55219{i:08d}"),
            state=Conversation.State.WAITING,
        )
        for i in range(count)
    ]
    for conversation in waiting:
        message = text_message(wa_id=conversation.customer.wa_id, text="alguém aí?")
        assert signed_post(client, envelope(messages=[message])).status_code == 200
    with (
        django_assert_max_num_queries(AFTER_COMMIT_QUERIES),
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert inbound.events_process_pending(batch_size=100) == count
    news = LiveEvent.objects.filter(kind="message.new")
    assert sorted(news.values_list("conversation_id", flat=True)) == sorted(c.pk for c in waiting)
    for conversation in waiting:
        conversation.refresh_from_db()
        assert conversation.unread_count == 1
        assert conversation.last_message.text == "alguém aí?"


# --- one customer's messages within a batch -----------------------------------------------------


def test_a_customers_messages_in_one_batch_are_applied_in_order(client):
    now = int(time.time())
    wa_id = "5511977776666"
    first = text_message(wa_id=wa_id, text="primeira", timestamp=now - 9, wamid="wamid.O1")
    second = text_message(wa_id=wa_id, text="segunda", timestamp=now - 5, wamid="wamid.O2")
    third = text_message(wa_id="551177776666", text="terceira", timestamp=now, wamid="wamid.O3")
    signed_post(client, envelope(messages=[second, first]))
    signed_post(client, envelope(messages=[third]))  # the same customer, without the 9th digit
    assert inbound.events_process_pending() == 2
    conversation = Conversation.objects.get()
    assert Customer.objects.count() == 1
    texts = list(conversation.messages.order_by("created_at", "pk").values_list("text", flat=True))
    assert texts == ["primeira", "segunda", "terceira"]
    assert conversation.last_message.text == "terceira"
    assert conversation.unread_count == 3


def test_an_edit_in_the_same_batch_as_its_original_is_applied(client):
    now = int(time.time())
    original = text_message(text="oi", timestamp=now, wamid="wamid.ORIG")
    edit = {
        "from": original["from"],
        "id": "wamid.ORIG-edit",
        "timestamp": str(now + 1),
        "type": "edit",
        "edit": {
            "original_message_id": "wamid.ORIG",
            "message": {"type": "text", "text": {"body": "olá"}},
        },
    }
    signed_post(client, envelope(messages=[edit]))
    signed_post(client, envelope(messages=[original]))
    assert inbound.events_process_pending() == 2
    stored = Message.objects.get(wamid="wamid.ORIG")
    assert (stored.text, stored.edited_at is not None) == ("olá", True)


# --- a message that cannot be stored (PostgreSQL refuses NUL in a text column) -----------------


@pytest.mark.skipif(not on_postgres(), reason="PostgreSQL refuses the NUL byte; SQLite keeps it")
def test_a_message_that_cannot_be_stored_does_not_stop_the_rest_of_its_batch(client):
    bad = text_message(wa_id="5521999990002", wamid="wamid.BAD", timestamp=STALE)
    bad["errors"] = [{"code": 131051, "title": "Unsupported\x00message"}]
    messages = [
        text_message(wa_id="5521999990001", wamid="wamid.GOOD1", timestamp=STALE),
        bad,
        text_message(wa_id="5521999990003", wamid="wamid.GOOD3", timestamp=STALE),
    ]
    for message in messages:
        signed_post(client, envelope(messages=[message]))
    assert inbound.events_process_pending() == 3
    assert set(Message.objects.values_list("wamid", flat=True)) == {"wamid.GOOD1", "wamid.GOOD3"}
    # Nothing of the refused message is left behind: no customer, no empty conversation.
    assert Customer.objects.count() == 2
    assert not Conversation.objects.filter(messages__isnull=True).exists()
    notes = sorted(WebhookEvent.objects.values_list("note", flat=True))
    assert notes == ["", "", "1 message(s) failed"]


# --- several workers at once (PostgreSQL: row locks, SKIP LOCKED, constraints) -----------------


def _race(workers: int, target) -> list[BaseException]:
    barrier = threading.Barrier(workers)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            target()
        except BaseException as exc:  # collected and asserted by the caller
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not on_postgres(), reason="concurrency is proven on PostgreSQL")
def test_workers_draining_at_once_apply_every_event_exactly_once():
    for i in range(60):
        _store(
            envelope(
                messages=[text_message(wa_id=f"55319{i:08d}", wamid=f"wamid.W{i}", timestamp=STALE)]
            )
        )
    done: list[int] = []
    errors = _race(3, lambda: done.append(inbound.events_process_pending(batch_size=7)))
    assert errors == []
    assert sum(done) == 60
    assert list(WebhookEvent.objects.values_list("attempts", "status").distinct()) == [
        (1, "processed")
    ]
    assert Message.objects.count() == 60
    assert Conversation.objects.count() == 60


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not on_postgres(), reason="concurrency is proven on PostgreSQL")
def test_racing_workers_give_a_new_customer_one_customer_row_and_one_open_conversation():
    # Eight events from one new customer (both spellings of the number), one per worker
    # batch, so four workers create the customer and open the conversation at the same time;
    # two events carry the same wamid (Meta's retry).
    for i in range(8):
        wa_id = "5541988887777" if i % 2 else "554188887777"
        wamid = "wamid.SAME" if i in (6, 7) else f"wamid.R{i}"
        _store(envelope(messages=[text_message(wa_id=wa_id, wamid=wamid, timestamp=STALE)]))
    errors = _race(4, lambda: inbound.events_process_pending(batch_size=1))
    assert errors == []
    assert Customer.objects.count() == 1
    assert Conversation.objects.exclude(state=Conversation.State.CLOSED).count() == 1
    conversation = Conversation.objects.get()
    assert conversation.messages.count() == 7
    assert not WebhookEvent.objects.exclude(status="processed").exists()
    assert not WebhookEvent.objects.filter(note__contains="failed").exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not on_postgres(), reason="concurrency is proven on PostgreSQL")
def test_workers_creating_the_same_new_customers_in_opposite_orders_both_store_everything():
    # Meta delivers the same 300 new customers to two workers, one batch in each order: each
    # worker's insert must not hold a customer the other is waiting for (a deadlock), and
    # no message may be lost either way.
    wa_ids = [f"55419{i:08d}" for i in range(300)]
    for name, order in (("A", wa_ids), ("B", wa_ids[::-1])):
        _store(
            envelope(
                messages=[
                    text_message(wa_id=wa_id, wamid=f"wamid.{name}{wa_id}", timestamp=STALE)
                    for wa_id in order
                ]
            )
        )
    errors = _race(2, lambda: inbound.events_process_pending(batch_size=1))
    assert errors == []
    assert Customer.objects.count() == 300
    assert Message.objects.count() == 600
    assert list(WebhookEvent.objects.values_list("status", "note").distinct()) == [
        ("processed", "")
    ]


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not on_postgres(), reason="lock timeouts are PostgreSQL's")
def test_a_database_timeout_leaves_the_batch_pending_and_the_retry_stores_it_once():
    from django.db import OperationalError, transaction

    wa_id = "5541977776666"
    _store(envelope(messages=[text_message(wa_id=wa_id, wamid="wamid.HELD", timestamp=STALE)]))
    holding = threading.Event()
    done = threading.Event()

    def hold_the_new_customer() -> None:
        # Another transaction inserting the same customer and not yet committed: our insert
        # must wait for it, longer than the lock timeout allows.
        try:
            with transaction.atomic():
                CustomerFactory(wa_id=wa_id, phone_e164="+" + wa_id)
                holding.set()
                done.wait(10)
                transaction.set_rollback(True)
        finally:
            connection.close()

    holder = threading.Thread(target=hold_the_new_customer)
    holder.start()
    try:
        assert holding.wait(10)
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '300ms'")
        with pytest.raises(OperationalError):
            inbound.events_process_pending()
    finally:
        done.set()
        holder.join()
        connection.close()  # the session's lock_timeout goes with it
    # Nothing was marked done and nothing half-written: the event waits for the retry.
    event = WebhookEvent.objects.get()
    assert event.status == WebhookEvent.Status.RECEIVED
    assert not Message.objects.exists()
    assert not Customer.objects.exists()
    # The task's retry (or the sweeper) applies it: stored once.
    assert inbound.events_process_pending() == 1
    assert list(Message.objects.values_list("wamid", flat=True)) == ["wamid.HELD"]
    assert Customer.objects.count() == 1
    assert WebhookEvent.objects.get().status == WebhookEvent.Status.PROCESSED

"""Behaviour of the conversation services: the rules every other part relies on."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from conftest import on_postgres
from conversations import outbox, services
from conversations.models import Conversation, ConversationEvent, Customer, Message
from conversations.tests.factories import ConversationFactory, CustomerFactory, MessageFactory

pytestmark = pytest.mark.django_db


# --- customers --------------------------------------------------------------------------------


def test_ninth_digit_variants_resolve_to_one_customer():
    first = services.customer_resolve(wa_id="551187654321", name="Ana")
    second = services.customer_resolve(wa_id="5511987654321", name="Ana Souza")
    assert first.pk == second.pk
    assert Customer.objects.count() == 1
    second.refresh_from_db()
    assert second.phone_e164 == "+5511987654321"
    assert second.wa_id == "5511987654321"  # the latest id Meta sent is the one to reply to
    assert second.name == "Ana Souza"


def test_customer_with_only_a_business_scoped_user_id_is_stored():
    customer = services.customer_resolve(bsuid="BR.13491208655302741918", username="ana.fibra")
    customer.refresh_from_db()
    assert customer.wa_id is None and customer.phone_e164 is None
    assert customer.bsuid == "BR.13491208655302741918"
    assert customer.username == "ana.fibra"


def test_phone_learned_later_is_attached_to_the_username_customer():
    by_id = services.customer_resolve(bsuid="BR.1")
    again = services.customer_resolve(bsuid="BR.1", wa_id="5511987654321")
    assert again.pk == by_id.pk
    assert Customer.objects.get(pk=by_id.pk).phone_e164 == "+5511987654321"


def test_contact_without_any_identifier_is_refused():
    with pytest.raises(services.InvalidCustomerIdentity):
        services.customer_resolve(name="Sem número")


def test_database_refuses_a_customer_without_identity():
    with pytest.raises(IntegrityError), transaction.atomic():
        Customer.objects.create(name="ninguém")


# --- protocol numbers -------------------------------------------------------------------------


def test_protocol_is_sao_paulo_date_plus_sequence():
    # 01:30 UTC on 2 Jan is still 1 Jan in São Paulo (UTC-3).
    moment = datetime(2026, 1, 2, 1, 30, tzinfo=UTC)
    first = services.protocol_next(now=moment)
    second = services.protocol_next(now=moment)
    assert first == "20260101000001"
    assert second == "20260101000002"
    next_day = services.protocol_next(now=moment + timedelta(days=1))
    assert next_day == "20260102000001"


def test_conversation_gets_a_protocol_and_starts_with_the_bot(customer):
    conv = services.conversation_open(customer=customer)
    assert conv.state == Conversation.State.BOT
    assert len(conv.protocol) == 14 and conv.protocol.isdigit()
    assert conv.events.filter(kind=ConversationEvent.Kind.OPENED).exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not on_postgres(), reason="concurrency is proven on PostgreSQL")
def test_protocols_stay_unique_under_twenty_concurrent_openings():
    customers = [CustomerFactory() for _ in range(20)]
    barrier = threading.Barrier(20)
    protocols: list[str] = []
    errors: list[BaseException] = []

    def open_one(customer):
        try:
            barrier.wait()
            protocols.append(services.conversation_open(customer=customer).protocol)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=open_one, args=(c,)) for c in customers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(protocols) == 20
    assert len(set(protocols)) == 20
    assert Conversation.objects.values("protocol").distinct().count() == 20


# --- one open conversation --------------------------------------------------------------------


def test_second_open_conversation_is_refused_by_the_database(customer):
    ConversationFactory(customer=customer)
    with pytest.raises(IntegrityError), transaction.atomic():
        Conversation.objects.create(customer=customer, protocol="99990101000001")


def test_service_reports_an_already_open_conversation(customer):
    services.conversation_open(customer=customer)
    with pytest.raises(services.ConversationAlreadyOpen):
        services.conversation_open(customer=customer)


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not on_postgres(), reason="concurrency is proven on PostgreSQL")
def test_concurrent_openings_for_one_customer_yield_one_conversation():
    customer = CustomerFactory()
    barrier = threading.Barrier(10)
    results: list[int] = []

    def open_one():
        try:
            barrier.wait()
            conv, _ = services.conversation_get_or_open(customer=customer)
            results.append(conv.pk)
        finally:
            connection.close()

    threads = [threading.Thread(target=open_one) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 10
    assert len(set(results)) == 1
    assert Conversation.objects.filter(customer=customer).count() == 1


def test_closed_conversation_is_never_reopened_a_new_contact_opens_a_new_one(customer, agent):
    conv = services.conversation_open(customer=customer)
    services.conversation_close(conversation=conv, resolution="resolved", actor=agent)
    with pytest.raises(services.InvalidTransition):
        services.conversation_assign(conversation=conv, agent=agent)
    with pytest.raises(services.InvalidTransition):
        services.conversation_close(conversation=conv, resolution="resolved")
    new, created = services.conversation_get_or_open(customer=customer)
    assert created and new.pk != conv.pk and new.protocol != conv.protocol


# --- assignment -------------------------------------------------------------------------------


def test_assign_moves_to_assigned_and_records_why(customer, agent, team_support):
    conv = services.conversation_open(customer=customer)
    conv = services.conversation_escalate(conversation=conv, reason="human", team=team_support)
    assert conv.state == Conversation.State.WAITING and conv.waiting_since is not None
    conv = services.conversation_assign(conversation=conv, agent=agent, reason="claim")
    assert conv.state == Conversation.State.ASSIGNED
    assert conv.assigned_agent == agent
    event = conv.events.get(kind=ConversationEvent.Kind.ASSIGNED)
    assert event.data["reason"] == "claim"


def test_assign_rejects_agent_from_other_team(customer, other_agent, team_support):
    conv = services.conversation_open(customer=customer, team=team_support)
    with pytest.raises(services.AgentNotAllowed):
        services.conversation_assign(conversation=conv, agent=other_agent)
    conv.refresh_from_db()
    assert conv.state == Conversation.State.BOT and conv.assigned_agent is None


def test_assign_rejects_a_user_without_an_agent_role(customer, dpo):
    conv = services.conversation_open(customer=customer)
    with pytest.raises(services.AgentNotAllowed):
        services.conversation_assign(conversation=conv, agent=dpo)


def test_database_refuses_assigned_state_without_agent(customer):
    conv = ConversationFactory(customer=customer)
    conv.state = Conversation.State.ASSIGNED
    with pytest.raises(IntegrityError), transaction.atomic():
        conv.save(update_fields=["state"])


def test_unassign_returns_to_the_waiting_queue(customer, agent, team_support):
    conv = services.conversation_open(customer=customer, team=team_support)
    conv = services.conversation_assign(conversation=conv, agent=agent)
    conv = services.conversation_unassign(conversation=conv, reason="agent_offline")
    assert conv.state == Conversation.State.WAITING and conv.assigned_agent is None


def test_close_requires_a_known_resolution(customer):
    conv = services.conversation_open(customer=customer)
    with pytest.raises(services.ServiceError):
        services.conversation_close(conversation=conv, resolution="whatever")
    conv.refresh_from_db()
    assert conv.state == Conversation.State.BOT


# --- messages ---------------------------------------------------------------------------------


def _inbound(conv, wamid="wamid.A", text="sem internet", at=None):
    return services.message_record_inbound(
        conversation=conv,
        wamid=wamid,
        type="text",
        text=text,
        timestamp=at or timezone.now(),
    )


def test_same_wamid_twice_stores_one_message(customer):
    conv = services.conversation_open(customer=customer)
    first, created_first = _inbound(conv)
    second, created_second = _inbound(conv, text="replay")
    assert created_first and not created_second
    assert first.pk == second.pk
    assert Message.objects.filter(wamid="wamid.A").count() == 1
    assert Message.objects.get(wamid="wamid.A").text == "sem internet"


def test_late_inbound_never_shortens_the_24_hour_window(customer):
    conv = services.conversation_open(customer=customer)
    now = timezone.now()
    _inbound(conv, "wamid.new", at=now)
    _inbound(conv, "wamid.old", at=now - timedelta(hours=5))
    conv.refresh_from_db()
    assert conv.last_customer_message_at == now
    assert conv.window_is_open()


def test_reply_context_links_to_the_quoted_message(customer):
    conv = services.conversation_open(customer=customer)
    original, _ = _inbound(conv, "wamid.orig")
    reply, _ = services.message_record_inbound(
        conversation=conv,
        wamid="wamid.reply",
        type="text",
        text="isso",
        timestamp=timezone.now(),
        context_wamid="wamid.orig",
    )
    assert reply.reply_to_id == original.pk


def test_unknown_message_type_is_stored_as_unsupported(customer):
    conv = services.conversation_open(customer=customer)
    msg, _ = services.message_record_inbound(
        conversation=conv, wamid="wamid.x", type="poll", timestamp=timezone.now()
    )
    assert msg.type == Message.Type.UNSUPPORTED


def test_outbound_dispatch_runs_on_commit(customer, agent, django_capture_on_commit_callbacks):
    dispatched: list[int] = []
    previous = outbox.register_dispatcher(dispatched.append)
    try:
        conv = services.conversation_open(customer=customer)
        _inbound(conv)
        with django_capture_on_commit_callbacks(execute=True):
            msg = services.message_record_outbound(
                conversation=conv, sender_kind="agent", sender_user=agent, text="Olá!"
            )
    finally:
        outbox.register_dispatcher(previous)
    assert dispatched == [msg.pk]
    assert msg.status == Message.Status.PENDING
    conv.refresh_from_db()
    assert conv.first_response_at is not None


def test_free_text_outside_the_window_is_refused_but_a_template_is_allowed(customer):
    conv = services.conversation_open(customer=customer)
    _inbound(conv, at=timezone.now() - timedelta(hours=25))
    conv.refresh_from_db()
    with pytest.raises(services.WindowClosed):
        services.message_record_outbound(conversation=conv, sender_kind="agent", text="oi")
    assert not Message.objects.filter(direction="out").exists()
    msg = services.message_record_outbound(
        conversation=conv,
        sender_kind="agent",
        type="template",
        payload={"name": "retomar_contato", "language": "pt_BR"},
    )
    assert msg.status == Message.Status.PENDING


# --- delivery states ----------------------------------------------------------------------------


def _outbound(conv, wamid="wamid.OUT", status=Message.Status.SENT):
    return MessageFactory(
        conversation=conv,
        wamid=wamid,
        direction=Message.Direction.OUTBOUND,
        sender_kind=Message.SenderKind.AGENT,
        status=status,
    )


@pytest.mark.parametrize(
    ("sequence", "final"),
    [
        (["sent", "delivered", "read"], "read"),
        (["read", "delivered", "sent"], "read"),  # everything late
        (["sent", "read"], "read"),  # read without delivered
        (["delivered", "sent"], "delivered"),
        (["read", "failed"], "read"),  # failure never replaces a read
        (["sent", "failed", "delivered", "read"], "failed"),  # failed is terminal
        (["read", "played", "read"], "played"),
    ],
)
def test_delivery_states_never_move_backwards(customer, sequence, final):
    conv = ConversationFactory(customer=customer)
    msg = _outbound(conv, status=Message.Status.PENDING)
    for status in sequence:
        services.message_update_delivery(wamid=msg.wamid, status=status, error_code=131047)
    msg.refresh_from_db()
    assert msg.status == final


def test_read_without_delivered_fills_delivered_time(customer):
    conv = ConversationFactory(customer=customer)
    msg = _outbound(conv)
    assert services.message_update_delivery(wamid=msg.wamid, status="read")
    msg.refresh_from_db()
    assert msg.read_at is not None and msg.delivered_at is not None


def test_failure_keeps_metas_code_and_title(customer):
    conv = ConversationFactory(customer=customer)
    msg = _outbound(conv)
    services.message_update_delivery(
        wamid=msg.wamid,
        status="failed",
        error_code=131047,
        error_title="Re-engagement message",
        error_details="More than 24 hours have passed",
    )
    msg.refresh_from_db()
    assert (msg.status, msg.error_code, msg.error_title) == (
        "failed",
        131047,
        "Re-engagement message",
    )


def test_status_for_an_unknown_wamid_changes_nothing(customer):
    assert services.message_update_delivery(wamid="wamid.nope", status="read") is False


def test_inbound_messages_are_not_touched_by_statuses(customer):
    conv = ConversationFactory(customer=customer)
    msg = MessageFactory(conversation=conv, wamid="wamid.IN")
    assert services.message_update_delivery(wamid="wamid.IN", status="read") is False
    msg.refresh_from_db()
    assert msg.status == Message.Status.RECEIVED

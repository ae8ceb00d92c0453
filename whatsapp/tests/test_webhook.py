"""The webhook as Meta sees it: verification, signatures, durable acknowledgement, processing."""

from __future__ import annotations

import json
import time

import pytest
from django.db import connection

from conversations.models import Conversation, Customer, Message
from conversations.tests.factories import ConversationFactory, MessageFactory
from whatsapp import inbound
from whatsapp.models import EarlyStatus, WebhookEvent
from whatsapp.testing import envelope, new_wamid, signed_post, status, text_message

pytestmark = pytest.mark.django_db

URL = "/webhooks/whatsapp/"


def _process_all() -> None:
    """Run the worker step for every stored event (what the Celery task does)."""
    for event_id in WebhookEvent.objects.order_by("pk").values_list("pk", flat=True):
        inbound.event_process(event_id=event_id)


# --- GET verification -----------------------------------------------------------------------


def test_subscription_verification_echoes_the_challenge(client, settings):
    response = client.get(
        URL,
        {
            "hub.mode": "subscribe",
            "hub.verify_token": settings.WHATSAPP_VERIFY_TOKEN,
            "hub.challenge": "1158201444",
        },
    )
    assert response.status_code == 200
    assert response.content == b"1158201444"


@pytest.mark.parametrize(
    "params",
    [
        {"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1"},
        {"hub.mode": "unsubscribe", "hub.verify_token": "dev-verify-token", "hub.challenge": "1"},
        {},
    ],
)
def test_subscription_verification_refuses_anything_else(client, params):
    assert client.get(URL, params).status_code == 403


# --- POST: signature, shape, size ----------------------------------------------------------


def test_missing_signature_is_refused_and_nothing_stored(client):
    body = json.dumps(envelope(messages=[text_message()]))
    response = client.post(URL, data=body, content_type="application/json")
    assert response.status_code == 403
    assert WebhookEvent.objects.count() == 0


def test_forged_signature_stores_nothing(client):
    body = json.dumps(envelope(messages=[text_message()])).encode()
    response = signed_post(client, body, secret="not-the-app-secret")
    assert response.status_code == 403
    assert WebhookEvent.objects.count() == 0
    assert Message.objects.count() == 0


def test_signature_over_a_different_body_is_refused(client):
    good = json.dumps(envelope(messages=[text_message()])).encode()
    from whatsapp.inbound import sign

    response = client.post(
        URL,
        data=good.replace(b"sem internet", b"com internet"),
        content_type="application/json",
        HTTP_X_HUB_SIGNATURE_256=sign(good),
    )
    assert response.status_code == 403


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "body is not valid JSON"),
        (b"[1, 2]", "top-level JSON value is not an object"),
        (b'{"object": "page", "entry": []}', "object is not whatsapp_business_account"),
        (b'{"object": "whatsapp_business_account"}', "entry is missing"),
        (b"\xff\xfe", "body is not valid UTF-8"),
    ],
)
def test_signed_body_that_is_not_an_envelope_gets_400_with_a_reason(client, body, reason):
    response = signed_post(client, body)
    assert response.status_code == 400
    assert response.json() == {"error": reason}
    assert WebhookEvent.objects.count() == 0


def test_body_over_three_megabytes_gets_413(client):
    payload = envelope(messages=[text_message(text="x" * (3 * 1024 * 1024))])
    response = signed_post(client, payload)
    assert response.status_code == 413
    assert WebhookEvent.objects.count() == 0


def test_other_methods_get_405(client):
    assert client.put(URL).status_code == 405


# --- durable acknowledgement -----------------------------------------------------------------


def test_event_is_stored_before_the_200(client):
    payload = envelope(messages=[text_message(text="sem net")])
    response = signed_post(client, payload)
    assert response.status_code == 200
    event = WebhookEvent.objects.get()
    assert event.pk == response.json()["event"]
    assert json.loads(event.body) == payload
    assert event.status == WebhookEvent.Status.RECEIVED


def test_database_failure_answers_5xx_so_meta_retries(client):
    # A real write failure: the events table is gone (inside the test's transaction).
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE {connection.ops.quote_name(WebhookEvent._meta.db_table)}")
    response = signed_post(client, envelope(messages=[text_message()]))
    assert response.status_code == 503
    assert response.json() == {"error": "temporarily unavailable"}


# --- processing ----------------------------------------------------------------------------


def test_text_message_opens_a_conversation_with_a_protocol(client):
    wamid = new_wamid()
    signed_post(client, envelope(messages=[text_message(wamid=wamid, text="Estou sem internet")]))
    _process_all()
    message = Message.objects.get(wamid=wamid)
    assert message.text == "Estou sem internet"
    assert message.direction == Message.Direction.INBOUND
    conversation = message.conversation
    assert conversation.state == Conversation.State.BOT
    assert len(conversation.protocol) == 14
    assert conversation.customer.phone_e164 == "+5511987654321"
    assert conversation.customer.name == "Cliente Teste"
    assert conversation.last_customer_message_at is not None
    assert WebhookEvent.objects.get().status == WebhookEvent.Status.PROCESSED


def test_same_wamid_delivered_twice_stores_one_message(client):
    payload = envelope(messages=[text_message(wamid="wamid.RETRY1")])
    signed_post(client, payload)
    signed_post(client, payload)  # Meta's retry
    _process_all()
    _process_all()  # and a task delivered twice
    assert Message.objects.filter(wamid="wamid.RETRY1").count() == 1
    assert Conversation.objects.count() == 1


def test_every_message_and_status_of_a_batch_is_processed(client):
    outbound = [
        MessageFactory(
            conversation=ConversationFactory(),
            wamid=f"wamid.OUT{i}",
            direction=Message.Direction.OUTBOUND,
            sender_kind=Message.SenderKind.AGENT,
            status=Message.Status.SENT,
        )
        for i in range(3)
    ]
    now = int(time.time())
    messages = [
        text_message(wa_id=f"55219{i:08d}", text=f"mensagem {i}", timestamp=now) for i in range(50)
    ]
    payload = {
        "object": "whatsapp_business_account",
        "entry": [
            envelope(messages=messages[:25])["entry"][0],
            {
                "id": "1",
                "changes": [
                    envelope(messages=messages[25:])["entry"][0]["changes"][0],
                    envelope(
                        statuses=[status(wamid=m.wamid, status="delivered") for m in outbound]
                    )["entry"][0]["changes"][0],
                ],
            },
        ],
    }
    assert signed_post(client, payload).status_code == 200
    _process_all()
    assert Message.objects.filter(direction="in").count() == 50
    assert Customer.objects.count() == 50 + 3
    assert set(Message.objects.filter(direction="out").values_list("status", flat=True)) == {
        "delivered"
    }


def test_messages_of_one_customer_keep_their_order(client):
    now = int(time.time())
    first = text_message(text="primeira", timestamp=now - 5, wamid="wamid.1")
    second = text_message(text="segunda", timestamp=now - 3, wamid="wamid.2")
    third = text_message(text="terceira", timestamp=now, wamid="wamid.3")
    # Delivered out of order, across two POSTs.
    signed_post(client, envelope(messages=[third, first]))
    signed_post(client, envelope(messages=[second]))
    _process_all()
    conversation = Conversation.objects.get()
    texts = list(conversation.messages.order_by("created_at", "pk").values_list("text", flat=True))
    assert texts == ["primeira", "segunda", "terceira"]


def test_statuses_only_move_forward_whatever_the_arrival_order(client):
    msg = MessageFactory(
        conversation=ConversationFactory(),
        wamid="wamid.ORDER",
        direction=Message.Direction.OUTBOUND,
        sender_kind=Message.SenderKind.AGENT,
        status=Message.Status.PENDING,
    )
    for name in ("read", "sent", "delivered"):
        signed_post(client, envelope(statuses=[status(wamid=msg.wamid, status=name)]))
    _process_all()
    msg.refresh_from_db()
    assert msg.status == Message.Status.READ
    assert msg.sent_at and msg.delivered_at and msg.read_at


def test_failed_status_records_metas_error_and_flags_the_window(client):
    conversation = ConversationFactory()
    msg = MessageFactory(
        conversation=conversation,
        wamid="wamid.FAIL",
        direction=Message.Direction.OUTBOUND,
        sender_kind=Message.SenderKind.AGENT,
        status=Message.Status.SENT,
    )
    error = {
        "code": 131047,
        "title": "Re-engagement message",
        "message": "Re-engagement message",
        "error_data": {"details": "Message failed to send because more than 24 hours have passed"},
    }
    signed_post(
        client, envelope(statuses=[status(wamid=msg.wamid, status="failed", errors=[error])])
    )
    _process_all()
    msg.refresh_from_db()
    conversation.refresh_from_db()
    assert (msg.status, msg.error_code) == ("failed", 131047)
    assert "24 hours" in msg.error_details
    assert conversation.template_required is True


def test_status_before_the_send_is_recorded_is_kept_for_later(client):
    signed_post(client, envelope(statuses=[status(wamid="wamid.NOTYET", status="delivered")]))
    _process_all()
    assert EarlyStatus.objects.filter(wamid="wamid.NOTYET", status="delivered").exists()


def test_an_early_failure_keeps_metas_details_encrypted_at_rest(client):
    """A failed status that beats its send's response waits in EarlyStatus; Meta's details can
    echo the number, so they are ciphertext in the column (as on Message)."""
    from django.db import connection

    from ispsupport import crypto

    error = {
        "code": 131030,
        "title": "Recipient phone number not in allowed list",
        "message": "Recipient phone number not in allowed list",
        "error_data": {"details": "Recipient phone number 5511987654321 not in allowed list"},
    }
    signed_post(
        client,
        envelope(statuses=[status(wamid="wamid.EARLYFAIL", status="failed", errors=[error])]),
    )
    _process_all()
    early = EarlyStatus.objects.get(wamid="wamid.EARLYFAIL", status="failed")
    assert "5511987654321" in early.error_details
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT error_details FROM {EarlyStatus._meta.db_table} WHERE id = %s",  # noqa: S608
            [early.pk],
        )
        (raw,) = cursor.fetchone()
    assert raw.startswith(crypto.TOKEN_PREFIX) and "5511987654321" not in raw


def test_unknown_field_is_stored_and_ignored(client):
    payload = envelope(field="account_update")
    payload["entry"][0]["changes"][0]["value"] = {"event": "DISABLED_UPDATE"}
    assert signed_post(client, payload).status_code == 200
    _process_all()
    assert WebhookEvent.objects.get().status == WebhookEvent.Status.IGNORED
    assert Message.objects.count() == 0


def test_events_for_a_number_we_do_not_serve_are_stored_and_ignored(client):
    payload = envelope(messages=[text_message()], phone_number_id="999999999")
    assert signed_post(client, payload).status_code == 200
    _process_all()
    assert WebhookEvent.objects.get().status == WebhookEvent.Status.IGNORED
    assert Message.objects.count() == 0


def test_several_numbers_route_by_phone_number_id(client, settings):
    settings.WHATSAPP_PHONE_NUMBER_IDS = ["111", "222"]
    signed_post(client, envelope(messages=[text_message(wamid="wamid.N2")], phone_number_id="222"))
    _process_all()
    assert Message.objects.get(wamid="wamid.N2").conversation.business_number_id == "222"


def test_value_errors_are_recorded_on_the_event(client):
    error = {"code": 130429, "title": "Rate limit hit", "message": "Rate limit hit"}
    signed_post(client, envelope(errors=[error]))
    _process_all()
    event = WebhookEvent.objects.get()
    assert "1 error(s) reported by Meta" in event.note


def test_customer_with_only_a_user_id_is_handled(client):
    message = text_message(wamid="wamid.BSUID")
    del message["from"]
    message["from_user_id"] = "BR.13491208655302741918"
    payload = envelope(
        messages=[message],
        contacts=[
            {
                "profile": {"name": "Ana", "username": "ana.fibra"},
                "user_id": "BR.13491208655302741918",
            }
        ],
    )
    signed_post(client, payload)
    _process_all()
    customer = Message.objects.get(wamid="wamid.BSUID").conversation.customer
    assert customer.bsuid == "BR.13491208655302741918"
    assert customer.phone_e164 is None
    assert customer.username == "ana.fibra"


def test_ninth_digit_variants_land_in_one_conversation(client):
    now = int(time.time())
    signed_post(client, envelope(messages=[text_message(wa_id="551187654321", timestamp=now)]))
    signed_post(client, envelope(messages=[text_message(wa_id="5511987654321", timestamp=now)]))
    _process_all()
    assert Customer.objects.count() == 1
    assert Conversation.objects.count() == 1
    assert Message.objects.count() == 2


def test_revoke_blanks_the_original_and_edit_replaces_its_text(client):
    now = int(time.time())
    signed_post(
        client, envelope(messages=[text_message(wamid="wamid.E1", text="oi", timestamp=now)])
    )
    signed_post(
        client, envelope(messages=[text_message(wamid="wamid.R1", text="meu cpf", timestamp=now)])
    )
    edit = {
        "from": "5511987654321",
        "id": "wamid.E1-edit",
        "timestamp": str(now + 1),
        "type": "edit",
        "edit": {
            "original_message_id": "wamid.E1",
            "message": {"type": "text", "text": {"body": "olá"}},
        },
    }
    revoke = {
        "from": "5511987654321",
        "id": "wamid.R1-revoke",
        "timestamp": str(now + 2),
        "type": "revoke",
        "revoke": {"original_message_id": "wamid.R1"},
    }
    signed_post(client, envelope(messages=[edit, revoke]))
    _process_all()
    edited = Message.objects.get(wamid="wamid.E1")
    revoked = Message.objects.get(wamid="wamid.R1")
    assert (edited.text, edited.edited_at is not None) == ("olá", True)
    assert (revoked.text, revoked.deleted_by_customer_at is not None) == ("", True)
    assert Message.objects.count() == 2


def test_reaction_is_attached_to_the_message_it_reacts_to(client):
    now = int(time.time())
    out = MessageFactory(
        conversation=ConversationFactory(),
        wamid="wamid.OUTR",
        direction=Message.Direction.OUTBOUND,
        sender_kind=Message.SenderKind.AGENT,
        status=Message.Status.READ,
    )
    reaction = {
        "from": out.conversation.customer.wa_id,
        "id": "wamid.REACT",
        "timestamp": str(now),
        "type": "reaction",
        "reaction": {"message_id": "wamid.OUTR", "emoji": "👍"},
    }
    signed_post(client, envelope(messages=[reaction]))
    _process_all()
    stored = Message.objects.get(wamid="wamid.REACT")
    assert stored.type == Message.Type.REACTION
    assert stored.text == "👍"
    assert stored.reply_to_id == out.pk


def test_stale_message_goes_to_a_person_not_to_the_bot(client):
    old = int(time.time()) - 3 * 24 * 3600  # retried by Meta three days later
    signed_post(client, envelope(messages=[text_message(wamid="wamid.OLD", timestamp=old)]))
    _process_all()
    conversation = Message.objects.get(wamid="wamid.OLD").conversation
    assert conversation.state == Conversation.State.WAITING
    assert conversation.events.filter(kind="escalated", data__reason="stale_message").exists()


def test_processing_is_enqueued_after_the_acknowledgement(
    client, django_capture_on_commit_callbacks
):
    old = int(time.time()) - 3 * 24 * 3600
    with django_capture_on_commit_callbacks(execute=True):
        signed_post(client, envelope(messages=[text_message(wamid="wamid.Q", timestamp=old)]))
    assert Message.objects.filter(wamid="wamid.Q").exists()
    assert WebhookEvent.objects.get().status == WebhookEvent.Status.PROCESSED


def test_sweeper_processes_events_left_unprocessed(client):
    from datetime import timedelta

    from django.utils import timezone

    from whatsapp.tasks.inbound import sweep_webhook_events

    old = int(time.time()) - 3 * 24 * 3600
    signed_post(client, envelope(messages=[text_message(wamid="wamid.SWEEP", timestamp=old)]))
    WebhookEvent.objects.update(received_at=timezone.now() - timedelta(minutes=10))
    assert sweep_webhook_events() == 1
    assert Message.objects.filter(wamid="wamid.SWEEP").exists()


def test_pending_events_are_drained_in_batches_and_the_kick_is_released(client):
    from django.core.cache import cache

    old = int(time.time()) - 3 * 24 * 3600
    for i in range(5):
        signed_post(client, envelope(messages=[text_message(wamid=f"wamid.B{i}", timestamp=old)]))
    cache.set(inbound.KICK_KEY, "1")
    assert inbound.events_process_pending(batch_size=2) == 5
    assert Message.objects.filter(wamid__startswith="wamid.B").count() == 5
    assert not WebhookEvent.objects.filter(status=WebhookEvent.Status.RECEIVED).exists()
    assert cache.get(inbound.KICK_KEY) is None
    assert inbound.events_process_pending() == 0  # nothing twice


def test_one_kick_per_burst_of_acknowledgements(client, django_capture_on_commit_callbacks):
    from django.core.cache import cache

    old = int(time.time()) - 3 * 24 * 3600
    cache.set(inbound.KICK_KEY, "1")  # a worker is already draining
    with django_capture_on_commit_callbacks(execute=True):
        signed_post(client, envelope(messages=[text_message(wamid="wamid.K1", timestamp=old)]))
    # No second task was started: the event waits for the running drain (or the sweeper).
    assert WebhookEvent.objects.get().status == WebhookEvent.Status.RECEIVED
    cache.delete(inbound.KICK_KEY)
    with django_capture_on_commit_callbacks(execute=True):
        signed_post(client, envelope(messages=[text_message(wamid="wamid.K2", timestamp=old)]))
    assert set(WebhookEvent.objects.values_list("status", flat=True)) == {"processed"}

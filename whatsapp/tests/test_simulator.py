"""The Graph simulator: signed webhooks to our endpoint, statuses for accepted sends, the phone."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from django.conf import settings

from whatsapp.client import get_client
from whatsapp.tests.loopback import *  # noqa: F403

pytestmark = pytest.mark.django_db
PNID = "100000000000001"


def _verify(headers: dict[str, str], body: bytes) -> dict:
    """Check the signature the way Meta documents it, independently of our own code."""
    expected = hmac.new(settings.WHATSAPP_APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert headers["x-hub-signature-256"] == f"sha256={expected}"
    assert headers["content-type"] == "application/json"
    return json.loads(body)


def test_a_customer_message_becomes_a_signed_webhook_in_metas_envelope(graph, webhook_sink, client):
    response = client.post(
        "/simulator/api/send",
        data={
            "wa_id": "5511988887777",
            "name": "Ana",
            "phone_number_id": PNID,
            "kind": "text",
            "text": "Minha internet caiu",
        },
        content_type="application/json",
    )
    assert response.status_code == 201
    assert graph.wait_idle(5)

    ((headers, body),) = webhook_sink.received
    payload = _verify(headers, body)
    assert payload["object"] == "whatsapp_business_account"
    value = payload["entry"][0]["changes"][0]["value"]
    assert payload["entry"][0]["changes"][0]["field"] == "messages"
    assert value["metadata"]["phone_number_id"] == PNID
    assert value["contacts"] == [{"profile": {"name": "Ana"}, "wa_id": "5511988887777"}]
    (message,) = value["messages"]
    assert message["id"] == response.json()["wamid"]
    assert (message["from"], message["type"], message["text"]) == (
        "5511988887777",
        "text",
        {"body": "Minha internet caiu"},
    )
    assert message["timestamp"].isdigit()


def test_pressing_a_button_replies_with_its_id_and_context(graph, webhook_sink, client):
    client.post(
        "/simulator/api/send",
        data={
            "wa_id": "5511988887777",
            "name": "Ana",
            "kind": "button_reply",
            "reply_id": "segunda_via",
            "reply_title": "2ª via",
            "context": "wamid.MENU",
        },
        content_type="application/json",
    )
    graph.wait_idle(5)

    message = json.loads(webhook_sink.received[0][1])["entry"][0]["changes"][0]["value"][
        "messages"
    ][0]
    assert message["interactive"] == {
        "type": "button_reply",
        "button_reply": {"id": "segunda_via", "title": "2ª via"},
    }
    assert message["context"]["id"] == "wamid.MENU"


def test_an_accepted_send_is_followed_by_signed_sent_and_delivered_statuses(graph, webhook_sink):
    wamid = get_client().send(
        PNID,
        {
            "messaging_product": "whatsapp",
            "to": "+5511988887777",
            "type": "text",
            "text": {"body": "Oi"},
        },
    )
    assert graph.wait_idle(5)

    statuses = []
    for headers, body in webhook_sink.received:
        (status,) = _verify(headers, body)["entry"][0]["changes"][0]["value"]["statuses"]
        statuses.append((status["id"], status["status"], status["recipient_id"]))
    assert statuses == [(wamid, "sent", "5511988887777"), (wamid, "delivered", "5511988887777")]


def test_a_scripted_async_failure_posts_a_failed_status_with_metas_error(graph, webhook_sink):
    graph.push_async_failure(131047)
    wamid = get_client().send(
        PNID,
        {
            "messaging_product": "whatsapp",
            "to": "+5511988887777",
            "type": "text",
            "text": {"body": "Oi"},
        },
    )
    graph.wait_idle(5)

    (status,) = json.loads(webhook_sink.received[0][1])["entry"][0]["changes"][0]["value"][
        "statuses"
    ]
    assert (status["id"], status["status"]) == (wamid, "failed")
    assert status["errors"][0]["code"] == 131047


def test_the_phone_sees_replies_and_reading_them_posts_read(graph, webhook_sink, client):
    wamid = get_client().send(
        PNID,
        {
            "messaging_product": "whatsapp",
            "to": "+5511988887777",
            "type": "interactive",
            "interactive": {
                "type": "button",
                "body": {"text": "Escolha"},
                "action": {
                    "buttons": [{"type": "reply", "reply": {"id": "a", "title": "Internet"}}]
                },
            },
        },
    )
    graph.wait_idle(5)
    webhook_sink.received.clear()

    thread = client.get("/simulator/api/thread", {"wa_id": "5511988887777", "seen": "1"}).json()
    graph.wait_idle(5)

    (shown,) = thread["messages"]
    assert (shown["wamid"], shown["dir"], shown["text"]) == (wamid, "out", "Escolha")
    assert shown["buttons"] == [{"id": "a", "title": "Internet"}]
    (read,) = json.loads(webhook_sink.received[0][1])["entry"][0]["changes"][0]["value"]["statuses"]
    assert (read["id"], read["status"]) == (wamid, "read")
    version = str(thread["version"])
    assert (
        client.get("/simulator/api/thread", {"wa_id": "5511988887777", "v": version}).status_code
        == 204
    )


def test_webhooks_our_endpoint_refuses_are_retried_like_meta(graph, webhook_sink, client):
    webhook_sink.status = 503
    graph.poster.RETRY_DELAYS = (0.0, 0.0, 0.0)
    try:
        client.post(
            "/simulator/api/send",
            data={"wa_id": "5511988887777", "name": "Ana", "kind": "text", "text": "Oi"},
            content_type="application/json",
        )
        graph.wait_idle(5)
    finally:
        del graph.poster.RETRY_DELAYS
    assert len(webhook_sink.received) == 4  # the first try and three retries, same bytes
    assert len({body for _headers, body in webhook_sink.received}) == 1


def test_the_phone_page_is_portuguese_and_loads_its_script_from_static(client, graph):
    response = client.get("/simulator/")
    html = response.content.decode()
    assert response.status_code == 200
    assert '<html lang="pt-br">' in html and "Simulador do WhatsApp" in html
    assert 'src="/static/whatsapp/simulator.js"' in html
    assert "<script>" not in html  # no inline scripts


def test_the_phone_refuses_an_invalid_number(client, graph, webhook_sink):
    response = client.post(
        "/simulator/api/send",
        data={"wa_id": "abc", "kind": "text", "text": "Oi"},
        content_type="application/json",
    )
    assert response.status_code == 400 and "Número inválido" in response.json()["error"]
    assert webhook_sink.received == []


def test_graph_refuses_a_send_from_a_number_we_do_not_have(graph):
    from whatsapp.client import GraphError

    with pytest.raises(GraphError) as caught:
        get_client().send(
            "999",
            {
                "messaging_product": "whatsapp",
                "to": "+5511988887777",
                "type": "text",
                "text": {"body": "Oi"},
            },
        )
    assert caught.value.code == 100 and graph.sent() == []

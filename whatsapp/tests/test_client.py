"""The Graph client against the simulator over loopback: exact requests, errors by code."""

from __future__ import annotations

import io

import pytest

from whatsapp.client import ErrorKind, GraphClient, GraphError, classify, get_client
from whatsapp.tests.loopback import *  # noqa: F403

PNID = "100000000000001"
TEXT = {
    "messaging_product": "whatsapp",
    "recipient_type": "individual",
    "to": "+5511987654321",
    "type": "text",
    "text": {"preview_url": False, "body": "Olá! Sua fatura foi enviada."},
}

pytestmark = pytest.mark.django_db


def test_send_posts_the_exact_graph_request_with_the_bearer_token(graph):
    wamid = get_client().send(PNID, TEXT)

    (request,) = graph.requests
    assert request.method == "POST"
    assert request.path == f"/simulator/graph/v25.0/{PNID}/messages"
    assert request.authorization == "Bearer dev-access-token"
    assert request.body == TEXT
    assert wamid.startswith("wamid.") and graph.sent() == [TEXT]


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (130429, ErrorKind.RETRYABLE),
        (131000, ErrorKind.RETRYABLE),
        (131056, ErrorKind.PAIR_LIMIT),
        (131047, ErrorKind.WINDOW_CLOSED),
        (190, ErrorKind.TOKEN),
        (131026, ErrorKind.PERMANENT),
        (368, ErrorKind.PERMANENT),
    ],
)
def test_errors_are_classified_by_code_not_by_wording(graph, code, kind):
    graph.push_error(code, title="Wording that changed upstream")

    with pytest.raises(GraphError) as caught:
        get_client().send(PNID, TEXT)

    error = caught.value
    assert (error.code, error.kind) == (code, kind)
    assert error.title == "Wording that changed upstream"
    assert error.fbtrace_id.startswith("A")
    assert error.http_status in (400, 401, 403, 500)


def test_a_bare_server_error_and_a_timeout_are_retryable(graph, settings):
    graph.push_http(503)
    with pytest.raises(GraphError) as caught:
        get_client().send(PNID, TEXT)
    assert caught.value.retryable and caught.value.http_status == 503

    graph.push_timeout(1.0)
    client = GraphClient(
        base_url=settings.WHATSAPP_API_BASE_URL, version="v25.0", access_token="x", timeout_s=0.2
    )
    with pytest.raises(GraphError) as caught:
        client.send(PNID, TEXT)
    assert caught.value.retryable and caught.value.code is None


def test_a_wrong_token_is_refused_with_190(graph, settings):
    client = GraphClient(
        base_url=settings.WHATSAPP_API_BASE_URL, version="v25.0", access_token="expired"
    )
    with pytest.raises(GraphError) as caught:
        client.send(PNID, TEXT)
    assert caught.value.kind == ErrorKind.TOKEN and caught.value.http_status == 401


def test_the_simulator_refuses_bodies_meta_would_refuse(graph):
    too_long = {**TEXT, "text": {"body": "x" * 4097}}
    with pytest.raises(GraphError) as caught:
        get_client().send(PNID, too_long)
    assert caught.value.code == 100 and "4096" in caught.value.details
    assert graph.sent() == []


def test_mark_read_sends_metas_read_receipt(graph):
    get_client().mark_read(PNID, "wamid.INBOUND1")
    assert graph.requests[0].body == {
        "messaging_product": "whatsapp",
        "status": "read",
        "message_id": "wamid.INBOUND1",
    }


def test_media_is_fetched_in_two_steps_with_the_bearer_token(graph):
    media_id = graph.add_media(b"\x89PNG fake image", "image/png")

    info = get_client().media_info(media_id, phone_number_id=PNID)
    buffer = io.BytesIO()
    download = get_client().media_download(info.url, into=buffer, max_bytes=1000)

    assert (info.mime_type, info.file_size) == ("image/png", 15)
    assert buffer.getvalue() == b"\x89PNG fake image"
    assert download.sha256_hex == info.sha256
    info_request, file_request = graph.requests
    assert info_request.path == f"/simulator/graph/v25.0/{media_id}"
    assert info_request.query == {"phone_number_id": PNID}
    assert file_request.authorization == info_request.authorization == "Bearer dev-access-token"


def test_classify_without_a_code_falls_back_on_the_http_status():
    assert classify(None, None) == ErrorKind.RETRYABLE  # connection error
    assert classify(None, 502) == ErrorKind.RETRYABLE
    assert classify(None, 401) == ErrorKind.TOKEN
    assert classify(None, 400) == ErrorKind.PERMANENT
    assert classify(999999, 500) == ErrorKind.RETRYABLE

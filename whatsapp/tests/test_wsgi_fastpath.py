"""The web role's WSGI entry point: the webhook's lean path, and everything else untouched."""

from __future__ import annotations

import json

import pytest
from django.test import RequestFactory

from whatsapp.inbound import sign
from whatsapp.models import WebhookEvent
from whatsapp.testing import envelope, text_message
from whatsapp.wsgi import application

pytestmark = pytest.mark.django_db(transaction=True)


def _call(method: str, path: str, body: bytes = b"", **headers) -> tuple[int, dict, bytes]:
    request = RequestFactory().generic(
        method, path, data=body, content_type="application/json", **headers
    )
    captured: dict = {}

    def start_response(status, response_headers, exc_info=None):
        captured["status"] = int(status.split()[0])
        captured["headers"] = dict(response_headers)

    result = application(request.environ, start_response)
    try:
        content = b"".join(result)
    finally:
        result.close()
    return captured["status"], captured["headers"], content


def test_signed_webhook_is_stored_through_the_lean_path():
    body = json.dumps(envelope(messages=[text_message()])).encode()
    status, headers, content = _call(
        "POST", "/webhooks/whatsapp/", body, HTTP_X_HUB_SIGNATURE_256=sign(body)
    )
    assert status == 200
    assert json.loads(content)["status"] == "received"
    assert WebhookEvent.objects.count() == 1
    assert headers["Content-Type"] == "application/json"


def test_forged_signature_is_refused_on_the_lean_path():
    body = json.dumps(envelope(messages=[text_message()])).encode()
    status, _headers, _content = _call(
        "POST", "/webhooks/whatsapp/", body, HTTP_X_HUB_SIGNATURE_256="sha256=" + "0" * 64
    )
    assert status == 403
    assert WebhookEvent.objects.count() == 0


def test_unknown_host_is_refused():
    body = json.dumps(envelope(messages=[text_message()])).encode()
    status, _headers, _content = _call(
        "POST",
        "/webhooks/whatsapp/",
        body,
        HTTP_X_HUB_SIGNATURE_256=sign(body),
        HTTP_HOST="evil.example",
    )
    assert status == 400
    assert WebhookEvent.objects.count() == 0


def test_verification_get_works_on_the_lean_path(settings):
    status, _headers, content = _call(
        "GET",
        "/webhooks/whatsapp/?hub.mode=subscribe&hub.challenge=42"
        f"&hub.verify_token={settings.WHATSAPP_VERIFY_TOKEN}",
    )
    assert (status, content) == (200, b"42")


def test_other_paths_keep_the_full_stack():
    status, headers, _content = _call("GET", "/healthz")
    assert status == 200
    # Added by the security middleware that the lean path skips: proof the stack ran.
    assert "Content-Security-Policy" in headers

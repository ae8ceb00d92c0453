"""The webhook Meta calls: GET to verify the subscription, POST to deliver events."""

from __future__ import annotations

import logging
import time
import uuid

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.crypto import constant_time_compare
from django.views.decorators.csrf import csrf_exempt

from ispsupport import requestid
from whatsapp import inbound, metrics
from whatsapp.parsing import PayloadError

logger = logging.getLogger(__name__)


@csrf_exempt  # Meta cannot send a CSRF token; the HMAC signature authenticates the POST.
def webhook(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return _verify_subscription(request)
    if request.method == "POST":
        started = time.perf_counter()
        response = _receive(request)
        metrics.webhook_answered(response.status_code, time.perf_counter() - started)
        return response
    metrics.webhook_rejected("method")
    return JsonResponse({"error": "method not allowed"}, status=405, headers={"Allow": "GET, POST"})


def _verify_subscription(request: HttpRequest) -> HttpResponse:
    mode = request.GET.get("hub.mode")
    token = request.GET.get("hub.verify_token", "")
    challenge = request.GET.get("hub.challenge", "")
    if mode == "subscribe" and constant_time_compare(token, settings.WHATSAPP_VERIFY_TOKEN):
        return HttpResponse(challenge, content_type="text/plain")
    return HttpResponse("verification failed", status=403, content_type="text/plain")


def _receive(request: HttpRequest) -> HttpResponse:
    limit = settings.WHATSAPP_WEBHOOK_MAX_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        return JsonResponse({"error": "payload too large"}, status=413)
    try:
        body = request.body
    except RequestDataTooBig:
        return JsonResponse({"error": "payload too large"}, status=413)
    if len(body) > limit:
        return JsonResponse({"error": "payload too large"}, status=413)
    # The id the request-id middleware set (follows the event into the worker's log lines).
    request_id = requestid.get() or uuid.uuid4().hex
    try:
        event = inbound.event_receive(
            body=body,
            signature=request.META.get("HTTP_X_HUB_SIGNATURE_256"),
            request_id=request_id,
        )
    except inbound.SignatureError:
        logger.warning("webhook: invalid signature")
        return JsonResponse({"error": "invalid signature"}, status=403)
    except PayloadError as exc:
        return JsonResponse({"error": exc.reason}, status=400)
    except DatabaseError:
        logger.exception("webhook: event not stored; answering 503 so Meta retries")
        return JsonResponse({"error": "temporarily unavailable"}, status=503)
    return JsonResponse({"status": "received", "event": event.pk})

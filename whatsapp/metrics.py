"""Series of the WhatsApp channel: the webhook, Meta's Graph API, outbound delivery, media.

Recorded at the doors and the chokepoints: the webhook view (received, rejected, how fast it
answered), the stored events (processing lag, when the worker's batch that finishes them
commits), ``whatsapp.client`` (every Graph call by endpoint and outcome), ``whatsapp.delivery``
(limiter deferrals, Meta's refusals, time in the outbox). The webhook backlog and the token's
health are read on scrape. Labels: endpoints, outcomes, Meta's numeric codes, reasons.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any
from urllib.parse import urlparse

from django.conf import settings
from django.db.models import Count, Min
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily, Metric

from ispsupport.metrics import (
    FAST_BUCKETS,
    LAG_BUCKETS,
    counter,
    histogram,
    label,
    on_commit,
    register_state_collector,
)

REJECT_REASONS = ("signature", "payload", "too_large", "unavailable", "method")

WEBHOOK_RECEIVED = counter(
    "ispsupport_webhook_events_received",
    "Webhook POSTs stored and acknowledged with 200.",
)
WEBHOOK_REJECTED = counter(
    "ispsupport_webhook_events_rejected",
    "Webhook requests refused, by reason: signature (403), payload (400), too_large (413), "
    "unavailable (503, not stored: Meta retries), method (405).",
    ["reason"],
    initial=[(r,) for r in REJECT_REASONS],
)
WEBHOOK_ACK_SECONDS = histogram(
    "ispsupport_webhook_ack_duration_seconds",
    "Time to answer a webhook POST (signature check and durable store).",
    buckets=FAST_BUCKETS,
)
WEBHOOK_PROCESSED = counter(
    "ispsupport_webhook_events_processed",
    "Stored webhook events finished by the worker, by status (processed, ignored, failed).",
    ["status"],
    initial=[("processed",), ("ignored",), ("failed",)],
)
WEBHOOK_LAG = histogram(
    "ispsupport_webhook_processing_lag_seconds",
    "From storing a webhook event to the worker finishing it.",
    buckets=LAG_BUCKETS,
)
GRAPH_REQUESTS = counter(
    "ispsupport_whatsapp_api_requests",
    "Calls to Meta's Graph API by endpoint (messages, media_upload, media_info, media_download, "
    "templates) "
    "and outcome (ok, retryable, pair_limit, window_closed, token, permanent, timeout, network).",
    ["endpoint", "outcome"],
    initial=[("messages", "ok")],
)
GRAPH_SECONDS = histogram(
    "ispsupport_whatsapp_api_request_duration_seconds",
    "Duration of Graph API calls by endpoint.",
    ["endpoint"],
    buckets=FAST_BUCKETS,
)
GRAPH_ERRORS = counter(
    "ispsupport_whatsapp_api_errors",
    "Graph API errors by Meta's numeric code (none: no code, e.g. a bare 5xx).",
    ["code"],
)
RATE_LIMITED = counter(
    "ispsupport_whatsapp_rate_limited",
    "Sends held back by a rate limit: our limiter (local: the number's tier or the pair rate), "
    "a customer under Meta's backoff (pair_hold), Meta's 131056 (meta_pair) and 130429 "
    "(meta_throughput).",
    ["limit"],
    initial=[(x,) for x in ("local", "pair_hold", "meta_pair", "meta_throughput")],
)
DELIVERIES = counter(
    "ispsupport_outbound_deliveries",
    "Delivery attempts of outbox messages by result (sent, retry, failed, skipped, error).",
    ["result"],
    initial=[(r,) for r in ("sent", "retry", "failed", "skipped")],
)
OUTBOX_SECONDS = histogram(
    "ispsupport_outbound_queue_seconds",
    "From a reply entering the outbox to Meta accepting it (wamid received).",
    buckets=LAG_BUCKETS,
)
MEDIA_DOWNLOADS = counter(
    "ispsupport_media_downloads",
    "Inbound media downloads by result (stored, already, no_media, rejected, error).",
    ["result"],
)


# --- Recorders --------------------------------------------------------------------------------


def webhook_rejected(reason: str) -> None:
    WEBHOOK_REJECTED.labels(reason=reason).inc()


_REASON_BY_STATUS = {403: "signature", 400: "payload", 413: "too_large", 503: "unavailable"}


def webhook_answered(status: int, seconds: float) -> None:
    """One webhook POST answered with ``status`` after ``seconds``."""
    WEBHOOK_ACK_SECONDS.observe(seconds)
    if status == 200:
        WEBHOOK_RECEIVED.inc()
    else:
        webhook_rejected(_REASON_BY_STATUS.get(status, "other"))


def graph_endpoint(method: str, url: str) -> str:
    """The Graph operation a request performs, from its method and path (never the ids)."""
    path = urlparse(url).path.rstrip("/")
    base = urlparse(settings.WHATSAPP_API_BASE_URL).path.rstrip("/")
    prefix = f"{base}/{settings.WHATSAPP_API_VERSION}/"
    last = path.rsplit("/", 1)[-1]
    if last == "messages":
        return "messages"
    if last == "media" and method == "POST":
        return "media_upload"
    if last == "message_templates":
        return "templates"
    if method != "GET":
        return "other"
    if path.startswith(prefix) and "/" not in path[len(prefix) :]:
        return "media_info"  # GET /{media-id}
    return "media_download"  # Meta's short-lived file URL


def graph_call(endpoint: str, outcome: str, seconds: float, code: int | None = None) -> None:
    GRAPH_REQUESTS.labels(endpoint=endpoint, outcome=outcome).inc()
    GRAPH_SECONDS.labels(endpoint=endpoint).observe(seconds)
    if outcome != "ok":
        GRAPH_ERRORS.labels(code=str(code) if code is not None else "none").inc()


def graph_refusal(code: int | None) -> None:
    """Meta refused a send: count its rate limits (the window refusal is counted by the
    conversations service that flags the conversation)."""
    if code == 131056:
        RATE_LIMITED.labels(limit="meta_pair").inc()
    elif code == 130429:
        RATE_LIMITED.labels(limit="meta_throughput").inc()


def held_back(limit: str) -> None:
    RATE_LIMITED.labels(limit=limit).inc()


def accepted_by_meta(*, queued_at: datetime | None) -> None:
    if queued_at is not None:
        OUTBOX_SECONDS.observe(max(0.0, (timezone.now() - queued_at).total_seconds()))


def webhook_events_finished(events: Iterable[Any]) -> None:
    """The worker finished these events (``inbound._finish`` set status and processed_at);
    counted once their batch commits."""
    finished = []
    for event in events:
        lag = None
        if event.processed_at and event.received_at:
            lag = max(0.0, (event.processed_at - event.received_at).total_seconds())
        finished.append((label(event.status, default="unknown"), lag))

    def record() -> None:
        for status, lag in finished:
            WEBHOOK_PROCESSED.labels(status=status).inc()
            if lag is not None:
                WEBHOOK_LAG.observe(lag)

    on_commit(record)


# --- State read on scrape ---------------------------------------------------------------------


def _collect_state() -> Iterable[Metric]:
    from whatsapp import delivery
    from whatsapp.models import WebhookEvent

    pending = WebhookEvent.objects.filter(status=WebhookEvent.Status.RECEIVED).aggregate(
        n=Count("pk"), oldest=Min("received_at")
    )
    yield GaugeMetricFamily(
        "ispsupport_webhook_events_pending",
        "Webhook events stored and not yet processed (the inbound backlog).",
        value=pending["n"] or 0,
    )
    oldest = pending["oldest"]
    yield GaugeMetricFamily(
        "ispsupport_webhook_oldest_pending_seconds",
        "Age of the oldest unprocessed webhook event: the processing lag right now (0: none).",
        value=max(0.0, (timezone.now() - oldest).total_seconds()) if oldest else 0.0,
    )
    yield GaugeMetricFamily(
        "ispsupport_whatsapp_token_valid",
        "0 while Meta rejected the access token recently (code 190; /readyz fails too), else 1.",
        value=0 if delivery.token_check() else 1,
    )


def connect() -> None:
    register_state_collector("whatsapp", _collect_state)

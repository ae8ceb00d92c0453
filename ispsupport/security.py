"""Cross-cutting HTTP security: client IP, rate-limit decisions, headers, IP allowlists.

Everything here is infrastructure and imports no domain app.

* :func:`client_ip` is the one place that decides a request's address (``TRUSTED_PROXY_COUNT``
  proxies in front append to ``X-Forwarded-For``); axes, the limiter, the allowlists and the
  session list all use it.
* :func:`rate_limit` wraps ``ispsupport.ratelimit.allow`` (GCRA on Redis, shared by every
  process) with an explicit failure mode: when Redis is unreachable a *fail-open* rule allows
  (the WhatsApp webhook: never lose Meta's events) and a *fail-closed* rule refuses (log-in).
* :class:`WebhookRateLimitMiddleware`: per-IP limit on ``/webhooks/`` POSTs (generous, fail open).
* :class:`ApiRateThrottle`: DRF throttle per API token, else per user, else per IP (fail open).
* :class:`SecurityHeadersMiddleware`: Content-Security-Policy (no ``'unsafe-inline'`` scripts)
  and Permissions-Policy on every response.
* :class:`IPAllowlistMiddleware`: optional CIDR allowlists for ``/admin/`` and ``/api/``.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis
from auditlog.middleware import AuditlogMiddleware as _AuditlogMiddleware
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from rest_framework.throttling import BaseThrottle

from ispsupport import ratelimit
from ispsupport.metrics import RATE_LIMIT_DECISIONS

logger = logging.getLogger(__name__)

# --- Client address ---------------------------------------------------------------------------


def client_ip(request: HttpRequest) -> str:
    """The client's IP address.

    With ``TRUSTED_PROXY_COUNT = n > 0`` the address is the n-th entry from the right of
    ``X-Forwarded-For`` (the one our outermost trusted proxy saw); entries to its left are
    client-controlled and ignored. Falls back to ``REMOTE_ADDR``.
    """
    remote = request.META.get("REMOTE_ADDR", "") or ""
    count = int(getattr(settings, "TRUSTED_PROXY_COUNT", 0) or 0)
    if count > 0:
        forwarded = [
            part.strip()
            for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
            if part.strip()
        ]
        if len(forwarded) >= count:
            candidate = forwarded[-count]
            try:
                return str(ipaddress.ip_address(candidate))
            except ValueError:
                pass
    return remote


# --- Rate limits ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    retry_after_s: float
    degraded: bool = False  # the limiter's store was unreachable; the failure mode decided

    @property
    def retry_after_header(self) -> str:
        return str(max(1, math.ceil(self.retry_after_s)))


def parse_rate(rate: str) -> tuple[int, float]:
    """``"30/300"`` → 30 events per 300 seconds."""
    count, _, seconds = rate.partition("/")
    return int(count), float(seconds or 60)


def rate_limit(key: str, rate: str, *, fail_open: bool) -> Decision:
    """One event under ``key`` at ``rate`` (``"N/seconds"``); never raises for an outage.

    ``key`` must carry no personal data in clear (hash usernames before passing them).
    """
    limit, window = parse_rate(rate)
    try:
        allowed, retry_after = ratelimit.allow(key, limit, window)
    except (redis.exceptions.RedisError, OSError) as exc:
        RATE_LIMIT_DECISIONS.labels(scope=ratelimit.scope(key), result="degraded").inc()
        logger.warning(
            "rate limiter unavailable, failing %s",
            "open" if fail_open else "closed",
            extra={"rate_key": key.split(":", 1)[0], "error": type(exc).__name__},
        )
        retry = 0.0 if fail_open else float(settings.RATE_LIMIT_UNAVAILABLE_RETRY_SECONDS)
        return Decision(fail_open, retry, degraded=True)
    return Decision(allowed, retry_after)


def too_many_requests(decision: Decision, *, json: bool = True) -> HttpResponse:
    body = {"error": "rate_limited", "retry_after": int(decision.retry_after_header)}
    if json:
        response: HttpResponse = JsonResponse(body, status=429)
    else:
        response = HttpResponse("Too Many Requests", status=429, content_type="text/plain")
    response["Retry-After"] = decision.retry_after_header
    return response


class WebhookRateLimitMiddleware:
    """Per-IP limit on POSTs under ``/webhooks/`` (``RATE_LIMIT_WEBHOOK_IP``), failing open.

    Meta retries refused deliveries with backoff, so a 429 delays events but never loses them;
    an unreachable Redis lets everything through.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method == "POST" and request.path.startswith("/webhooks/"):
            decision = rate_limit(
                f"webhook:ip:{client_ip(request)}",
                settings.RATE_LIMIT_WEBHOOK_IP,
                fail_open=True,
            )
            if not decision.allowed:
                return too_many_requests(decision)
        return self.get_response(request)


class ApiRateThrottle(BaseThrottle):
    """DRF throttle: ``RATE_LIMIT_API`` per API token, else per user, else per IP (fail open)."""

    def allow_request(self, request, view) -> bool:
        auth = getattr(request, "auth", None)
        user = getattr(request, "user", None)
        if auth is not None and getattr(auth, "pk", None) is not None:
            key = f"api:token:{auth.pk}"
        elif user is not None and user.is_authenticated:
            key = f"api:user:{user.pk}"
        else:
            key = f"api:ip:{client_ip(request)}"
        decision = rate_limit(key, settings.RATE_LIMIT_API, fail_open=True)
        self._wait = decision.retry_after_s
        return decision.allowed

    def wait(self) -> float | None:
        return max(1.0, math.ceil(getattr(self, "_wait", 1.0)))


# --- Headers ----------------------------------------------------------------------------------


class SecurityHeadersMiddleware:
    """Adds ``Content-Security-Policy`` and ``Permissions-Policy`` unless the view set them."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        policy = settings.CONTENT_SECURITY_POLICY
        if policy and "Content-Security-Policy" not in response:
            header = (
                "Content-Security-Policy-Report-Only"
                if settings.CONTENT_SECURITY_POLICY_REPORT_ONLY
                else "Content-Security-Policy"
            )
            response[header] = policy
        if settings.PERMISSIONS_POLICY and "Permissions-Policy" not in response:
            response["Permissions-Policy"] = settings.PERMISSIONS_POLICY
        return response


# --- IP allowlists ----------------------------------------------------------------------------


@functools.lru_cache(maxsize=16)
def _networks(cidrs: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


def ip_allowed(ip: str, cidrs: list[str] | tuple[str, ...]) -> bool:
    """True when ``cidrs`` is empty (no allowlist) or ``ip`` is inside one of them."""
    if not cidrs:
        return True
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(address in net for net in _networks(tuple(cidrs)))


class IPAllowlistMiddleware:
    """``ADMIN_IP_ALLOWLIST`` guards ``/admin/``; ``API_IP_ALLOWLIST`` guards ``/api/``.

    Empty lists (the default) allow every address. A refused address gets 403 before any
    view, log-in page or authentication runs.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        path = request.path
        cidrs: list[str] = []
        if path.startswith("/admin/"):
            cidrs = settings.ADMIN_IP_ALLOWLIST
        elif path.startswith("/api/"):
            cidrs = settings.API_IP_ALLOWLIST
        if cidrs and not ip_allowed(client_ip(request), cidrs):
            logger.warning("request refused by IP allowlist", extra={"area": path.split("/")[1]})
            return HttpResponse("Forbidden", status=403, content_type="text/plain")
        return self.get_response(request)


def check_allowlists(app_configs=None, **kwargs):
    """System check: the allowlists are valid CIDRs."""
    from django.core import checks

    errors = []
    for name in ("ADMIN_IP_ALLOWLIST", "API_IP_ALLOWLIST", "METRICS_IP_ALLOWLIST"):
        for cidr in getattr(settings, name, []):
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                errors.append(
                    checks.Error(f"{name}: {cidr!r} is not an IP network", id="ispsupport.E110")
                )
    return errors


# --- Audit (django-auditlog) ------------------------------------------------------------------


def audit_mask(value: str) -> str:
    """``AUDITLOG_MASK_CALLABLE``: a masked field's diff records that it changed, never its
    value (auditlog's default keeps half of the string)."""
    return "***" if value not in (None, "", "None") else value


def hide_personal_object_repr(sender: Any, instance: Any, **kwargs: Any) -> None:
    """``pre_save`` of auditlog's and the admin's ``LogEntry``: both store ``str(obj)`` as
    ``object_repr`` in plain text, and a customer's ``str`` is their (encrypted) name. Models
    that say so (``audit_repr_is_personal = True``) are named "<model> #<pk>" instead; the
    change itself is still linked to the object by id."""
    content_type = getattr(instance, "content_type", None)
    model = content_type.model_class() if content_type is not None else None
    if model is not None and getattr(model, "audit_repr_is_personal", False):
        pk = getattr(instance, "object_pk", None) or instance.object_id
        instance.object_repr = f"{model._meta.verbose_name} #{pk}"


class AuditlogMiddleware(_AuditlogMiddleware):
    """django-auditlog's middleware with the client address from :func:`client_ip`.

    auditlog's own reads the first ``X-Forwarded-For`` entry, which any client can forge.
    """

    @staticmethod
    def _get_remote_addr(request: HttpRequest) -> str | None:
        return client_ip(request) or None

    @staticmethod
    def _get_remote_port(request: HttpRequest) -> int | None:
        return None


def audit_set_actor(user: object) -> None:
    """Name ``user`` as the actor of this request's audit entries when the middleware could
    not (API-token requests authenticate inside the DRF view, after the middleware ran)."""
    from auditlog.context import auditlog_value

    try:
        context = auditlog_value.get()
    except LookupError:
        return
    if context.get("actor") is None:
        context["actor"] = user

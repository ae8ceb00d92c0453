"""WSGI entry point for the HTTP role, with a lean path for Meta's webhook.

Every request except ``/webhooks/whatsapp/`` goes through Django's full handler and
middleware stack. The webhook skips the stack built for people (sessions, authentication,
2FA, CSRF, locale, messages, audit context, lockout, CORS, CSP): Meta's POST is
authenticated by its HMAC signature, which the view checks before anything else, and the
stack costs more than the work itself at the 1,333 messages/s peak. What a webhook request
still gets: the Host check (``ALLOWED_HOSTS``), the request id (``X-Request-ID``), the per-IP
limit, request signals (database connections are opened and returned to the pool exactly as
for any request), and Django's error logging.

Run ``gunicorn whatsapp.wsgi:application`` for the web role (README "Running in production").
"""

from __future__ import annotations

import logging
import os

from django.core import signals
from django.core.exceptions import DisallowedHost
from django.core.handlers.wsgi import WSGIRequest
from django.core.wsgi import get_wsgi_application
from django.http import HttpRequest, HttpResponse, JsonResponse

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ispsupport.settings")

logger = logging.getLogger("django.request")

WEBHOOK_PATH = "/webhooks/whatsapp/"


class WebhookFastPath:
    """Serve the webhook path directly; delegate every other path to ``fallback``."""

    def __init__(self, fallback) -> None:
        from ispsupport.requestid import RequestIdMiddleware
        from ispsupport.security import WebhookRateLimitMiddleware
        from whatsapp.views import webhook

        self.fallback = fallback
        self.view = RequestIdMiddleware(WebhookRateLimitMiddleware(webhook))

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") != WEBHOOK_PATH:
            return self.fallback(environ, start_response)
        signals.request_started.send(sender=self.__class__, environ=environ)
        request = WSGIRequest(environ)
        response = self._respond(request)
        # Closing the response (the server does it) sends request_finished: connections
        # go back to the pool, as with Django's own handler.
        response._resource_closers.append(request.close)
        status = f"{response.status_code} {response.reason_phrase}"
        headers = [
            *response.items(),
            *(("Set-Cookie", c.OutputString()) for c in response.cookies.values()),
        ]
        start_response(status, headers)
        return response

    def _respond(self, request: HttpRequest) -> HttpResponse:
        try:
            request.get_host()
        except DisallowedHost:
            return JsonResponse({"error": "host not allowed"}, status=400)
        try:
            return self.view(request)
        except Exception:
            logger.exception("webhook: unhandled error", extra={"status_code": 500})
            return JsonResponse({"error": "internal error"}, status=500)


application = WebhookFastPath(get_wsgi_application())

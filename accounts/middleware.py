"""Per-request account checks: the session record (revocation, idle timeout, last use) and the
second-factor requirement.

Order in ``settings.MIDDLEWARE``: after ``AuthenticationMiddleware`` and django-otp's
``OTPMiddleware``: ``SessionActivityMiddleware`` then ``OTPRequiredMiddleware``.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.urls import reverse
from django.utils.translation import gettext as _

from accounts import services
from accounts.models import UserSession
from ispsupport.security import client_ip


class SessionActivityMiddleware:
    """Ends requests of revoked or idle sessions (the request continues as anonymous) and keeps
    ``UserSession.last_seen_at`` current (one write per minute at most)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return self.get_response(request)
        session = request.session
        record_id = session.get(services.SESSION_RECORD_KEY)
        record = None
        if record_id is not None:
            record = UserSession.objects.filter(pk=record_id, user_id=user.pk).first()
            if record is None or record.ended_at is not None:
                logout(request)
                return self.get_response(request)
            if services.session_is_idle(record):
                services.sessions_end(records=[record], reason=UserSession.EndReason.IDLE)
                logout(request)
                messages.info(request, _("Sua sessão foi encerrada por inatividade."))
                return self.get_response(request)
            services.session_touch(record=record)
        else:
            # A session created before session records existed: record it now.
            record = services.session_record_login(
                user=user,
                session=session,
                ip=client_ip(request),
                user_agent=request.META.get("HTTP_USER_AGENT", ""),
            )
        token = services.current_user_session.set(record.pk)
        try:
            response = self.get_response(request)
        finally:
            services.current_user_session.reset(token)
        # The key may have been cycled in this request (password change keeps the session).
        key = session.session_key
        still_in = getattr(request, "user", None) is not None and request.user.is_authenticated
        if key and still_in and session.get(services.SESSION_RECORD_KEY) == record.pk:
            services.session_rekey(record=record, session_key=key)
        return response


def _exempt(path: str) -> bool:
    return any(path.startswith(prefix) for prefix in settings.OTP_EXEMPT_PATH_PREFIXES)


class OTPRequiredMiddleware:
    """The single second-factor gate: a logged-in user who needs 2FA (``otp_required_for``, or
    who has enrolled a device) and has not verified it in this session is sent to verification
    (or to enrolment when they have no device) from every non-exempt path; API calls get 403."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if (
            user is not None
            and user.is_authenticated
            and not _exempt(request.path)
            and not user.is_verified()
        ):
            from django_otp import user_has_device

            has_device = user_has_device(user)
            if services.otp_required_for(user) or has_device:
                if request.path.startswith("/api/"):
                    return JsonResponse(
                        {"detail": _("Verificação em duas etapas necessária.")}, status=403
                    )
                target = "accounts:otp_verify" if has_device else "accounts:otp_setup"
                query = urlencode({"next": request.get_full_path()})
                return HttpResponseRedirect(f"{reverse(target)}?{query}")
        return self.get_response(request)

"""Account pages: log-in, two-factor enrolment and verification, sessions, API tokens.

Every page but log-in/log-out needs an authenticated user; ``OTPRequiredMiddleware`` keeps
users who need 2FA on the ``/accounts/2fa/`` pages until they verify.
"""

from __future__ import annotations

import base64
import io
import math
from typing import Any

import qrcode
import qrcode.image.svg
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse, reverse_lazy
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST
from django_otp import devices_for_user
from django_otp import login as otp_login

from accounts import selectors, services
from accounts.devices import AuthenticatorDevice
from accounts.forms import ApiTokenCreateForm, OTPTokenForm
from accounts.models import ApiToken
from ispsupport.security import Decision, client_ip, rate_limit


def _rate_limited(request: HttpRequest, decision: Decision) -> HttpResponse:
    """429 when over the limit; 503 when the limiter is down and the rule fails closed."""
    status = 503 if decision.degraded else 429
    response = render(
        request,
        "registration/rate_limited.html",
        {"retry_after": int(decision.retry_after_header), "degraded": decision.degraded},
        status=status,
    )
    response["Retry-After"] = decision.retry_after_header
    return response


def _login_limits(request: HttpRequest) -> Decision | None:
    """The first refusing log-in limit (per IP, then per username), or None. Fails closed."""
    ip_decision = rate_limit(
        f"login:ip:{client_ip(request)}", settings.RATE_LIMIT_LOGIN_IP, fail_open=False
    )
    if not ip_decision.allowed:
        return ip_decision
    username = (request.POST.get("username") or "").strip().lower()
    if username:
        user_decision = rate_limit(
            f"login:user:{services.hash_key(username)[:32]}",
            settings.RATE_LIMIT_LOGIN_USERNAME,
            fail_open=False,
        )
        if not user_decision.allowed:
            return user_decision
    return None


class LoginView(auth_views.LoginView):
    """Django's log-in page with per-IP and per-username rate limits (django-axes locks the
    username+IP pair after ``AXES_FAILURE_LIMIT`` failures)."""

    template_name = "registration/login.html"
    redirect_authenticated_user = True

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        refused = _login_limits(request)
        if refused is not None:
            return _rate_limited(request, refused)
        return super().post(request, *args, **kwargs)


class LogoutView(auth_views.LogoutView):
    next_page = reverse_lazy("accounts:login")


def lockout_response(request: HttpRequest, credentials: Any = None, *args: Any) -> HttpResponse:
    """django-axes ``AXES_LOCKOUT_CALLABLE``: the pt-BR lockout page, 429 with Retry-After."""
    minutes = max(1, math.ceil(settings.AXES_COOLOFF_TIME * 60))
    response = render(
        request,
        "registration/lockout.html",
        {"cooloff_minutes": minutes, "failure_limit": settings.AXES_FAILURE_LIMIT},
        status=429,
    )
    response["Retry-After"] = str(minutes * 60)
    return response


@login_required
def account_home(request: HttpRequest) -> HttpResponse:
    from django_otp import user_has_device

    return render(
        request,
        "accounts/home.html",
        {
            "has_device": user_has_device(request.user),
            "otp_required": services.otp_required_for(request.user),
        },
    )


# --- Two-factor -------------------------------------------------------------------------------


def _safe_next(request: HttpRequest, default: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default


def _qr_data_uri(text: str) -> str:
    image = qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    buffer = io.BytesIO()
    image.save(buffer)
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def otp_setup(request: HttpRequest) -> HttpResponse:
    """Enrol an authenticator app: QR code + manual key, confirm with a code; then show the
    backup codes once. A user who already has a device must be verified to replace it."""
    from django_otp import user_has_device

    if user_has_device(request.user) and not request.user.is_verified():
        return HttpResponseRedirect(reverse("accounts:otp_verify"))
    device = services.totp_device_pending(user=request.user)
    form = OTPTokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        decision = rate_limit(
            f"otp:user:{request.user.pk}", settings.RATE_LIMIT_OTP, fail_open=False
        )
        if not decision.allowed:
            return _rate_limited(request, decision)
        codes = services.totp_device_confirm(device=device, token=form.cleaned_data["token"])
        if codes is not None:
            device.refresh_from_db()
            otp_login(request, device)
            return render(
                request,
                "accounts/backup_codes.html",
                {"codes": codes, "next": _safe_next(request, reverse("accounts:home"))},
            )
        form.add_error("token", _("Código incorreto. Confira a hora do celular e tente de novo."))
    secret = base64.b32encode(device.bin_key).decode("ascii")
    return render(
        request,
        "accounts/otp_setup.html",
        {
            "form": form,
            "qr_data_uri": _qr_data_uri(device.config_url),
            "secret": " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
            "next": _safe_next(request, ""),
        },
    )


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def otp_verify(request: HttpRequest) -> HttpResponse:
    """Ask for the second factor: a code from the app or a backup code (used once)."""
    devices = list(devices_for_user(request.user, confirmed=True))
    if not devices:
        return HttpResponseRedirect(reverse("accounts:otp_setup"))
    form = OTPTokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        decision = rate_limit(
            f"otp:user:{request.user.pk}", settings.RATE_LIMIT_OTP, fail_open=False
        )
        if not decision.allowed:
            return _rate_limited(request, decision)
        token = form.cleaned_data["token"]
        # App codes are 6 digits, backup codes 8 letters/digits: try only the matching kind,
        # so a backup code does not count as a failed app code (django-otp throttles those).
        is_app_code = token.isdigit() and len(token) == 6
        for device in devices:
            if isinstance(device, AuthenticatorDevice) != is_app_code:
                continue
            if device.verify_is_allowed()[0] and device.verify_token(token):
                otp_login(request, device)
                return HttpResponseRedirect(_safe_next(request, settings.LOGIN_REDIRECT_URL))
        form.add_error("token", _("Código incorreto ou já utilizado."))
    return render(
        request, "accounts/otp_verify.html", {"form": form, "next": _safe_next(request, "")}
    )


@never_cache
@login_required
@require_POST
def backup_codes_regenerate(request: HttpRequest) -> HttpResponse:
    if not request.user.is_verified():
        return HttpResponseRedirect(reverse("accounts:otp_verify"))
    codes = services.backup_codes_regenerate(user=request.user)
    return render(
        request, "accounts/backup_codes.html", {"codes": codes, "next": reverse("accounts:home")}
    )


# --- Sessions ---------------------------------------------------------------------------------


@never_cache
@login_required
def session_list(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "accounts/sessions.html",
        {
            "sessions": selectors.session_list_active_for_user(user=request.user),
            "current_id": request.session.get(services.SESSION_RECORD_KEY),
        },
    )


@login_required
@require_POST
def session_end(request: HttpRequest, pk: int) -> HttpResponse:
    if not services.session_revoke(user=request.user, session_id=pk):
        raise Http404
    if pk == request.session.get(services.SESSION_RECORD_KEY):
        return HttpResponseRedirect(reverse("accounts:login"))
    messages.success(request, _("Sessão encerrada."))
    return HttpResponseRedirect(reverse("accounts:sessions"))


@login_required
@require_POST
def session_end_others(request: HttpRequest) -> HttpResponse:
    count = services.sessions_end_all_for_user(
        user=request.user,
        reason="revoked",
        keep_session_id=request.session.get(services.SESSION_RECORD_KEY),
    )
    messages.success(request, _("%(n)d sessão(ões) encerrada(s).") % {"n": count})
    return HttpResponseRedirect(reverse("accounts:sessions"))


# --- API tokens -------------------------------------------------------------------------------


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def token_list(request: HttpRequest) -> HttpResponse:
    """List the user's tokens and create one; the secret appears in this response only."""
    form = ApiTokenCreateForm(request.POST or None)
    created: tuple[ApiToken, str] | None = None
    if request.method == "POST" and form.is_valid():
        try:
            created = services.api_token_create(user=request.user, **form.cleaned_data)
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            form = ApiTokenCreateForm()
    return render(
        request,
        "accounts/tokens.html",
        {
            "form": form,
            "tokens": selectors.api_token_list_for_user(user=request.user),
            "created": created[0] if created else None,
            "secret": created[1] if created else None,
        },
        status=201 if created else (400 if request.method == "POST" else 200),
    )


@login_required
@require_POST
def token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    token = get_object_or_404(ApiToken, pk=pk, user=request.user)
    services.api_token_revoke(token=token)
    messages.success(request, _("Token revogado."))
    return HttpResponseRedirect(reverse("accounts:tokens"))


class PasswordChangeView(auth_views.PasswordChangeView):
    """Keeps this session (``update_session_auth_hash``) and ends every other one."""

    template_name = "accounts/password_change.html"
    success_url = reverse_lazy("accounts:home")

    def form_valid(self, form: Any) -> HttpResponse:
        response = super().form_valid(form)
        messages.success(self.request, _("Senha alterada. As outras sessões foram encerradas."))
        return response

"""Who may use the console: the one seam every console view, API and socket goes through.

Views use ``console_required`` (or ``ConsoleRequiredMixin``); the WebSocket consumer and the API
permission call ``user_may_use_console``. Log-in itself is the project's one page
(``settings.LOGIN_URL``, Django's auth views in ``accounts``, where 2FA is enforced by middleware);
extra per-request rules can plug in here, in ``console_login_checks``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied

from accounts.models import Role

CONSOLE_ROLES = (Role.AGENT, Role.SUPERVISOR, Role.ADMIN)

# Extra checks a logged-in user must pass (e.g. a verified second factor). Each returns None to
# allow, or a URL to send the user to. The security layer appends to this list from its
# ``AppConfig.ready()``; nothing here knows about 2FA.
LoginCheck = Callable[[Any], str | None]
console_login_checks: list[LoginCheck] = []


def user_may_use_console(user: Any) -> bool:
    """Authenticated, active, and an agent, supervisor or admin (the DPO is not)."""
    return bool(
        user is not None
        and getattr(user, "is_authenticated", False)
        and user.is_active
        and user.has_role(*CONSOLE_ROLES)
    )


def user_is_supervisor(user: Any) -> bool:
    """Supervisors and admins: the All queue, assignment to others, presence board."""
    return user_may_use_console(user) and user.has_role(Role.SUPERVISOR, Role.ADMIN)


def user_is_admin(user: Any) -> bool:
    return user_may_use_console(user) and user.has_role(Role.ADMIN)


def session_second_factor_ok(user: Any, session: Any) -> bool:
    """For the WebSocket (HTTP has ``accounts.middleware.OTPRequiredMiddleware``): a user who
    needs a second factor must have verified one in this session."""
    from django_otp import DEVICE_ID_SESSION_KEY, user_has_device
    from django_otp.models import Device

    try:
        from accounts.services import otp_required_for
    except ImportError:  # pragma: no cover - 2FA not installed

        def otp_required_for(_user: Any) -> bool:
            return False

    if not (otp_required_for(user) or user_has_device(user)):
        return True
    persistent_id = session.get(DEVICE_ID_SESSION_KEY) if session is not None else None
    if not persistent_id:
        return False
    device = Device.from_persistent_id(persistent_id)
    return device is not None and device.user_id == user.pk


def console_login_url() -> str:
    """The project's one log-in page (rate limits, lockout and 2FA live there)."""
    return settings.LOGIN_URL


def _pending_login_check(request: Any) -> str | None:
    for check in console_login_checks:
        target = check(request)
        if target:
            return target
    return None


def console_required(view: Callable) -> Callable:
    """Send anonymous users to the log-in page; refuse (403) users without a console role."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path(), console_login_url())
        target = _pending_login_check(request)
        if target:
            return redirect_to_login(request.get_full_path(), target)
        if not user_may_use_console(request.user):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapper


class ConsoleRequiredMixin:
    """Class-based views: the same rule as ``console_required``."""

    @classmethod
    def as_view(cls, **initkwargs):
        return console_required(super().as_view(**initkwargs))

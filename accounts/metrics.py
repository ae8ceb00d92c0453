"""Series of accounts: log-ins, lockouts, sessions, API tokens.

Log-ins, log-outs and lockouts come from Django's and django-axes' signals; ended sessions from
``accounts.services.sessions_end``; API-token checks from the authentication class. Active
sessions are read on scrape. No usernames, addresses or user ids in labels.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric

from ispsupport.metrics import counter, label, register_state_collector

LOGINS = counter(
    "ispsupport_logins",
    "Log-in attempts with a password by result (success, failure).",
    ["result"],
    initial=[("success",), ("failure",)],
)
LOGOUTS = counter("ispsupport_logouts", "Log-outs by staff (their session ends at their request).")
LOCKOUTS = counter(
    "ispsupport_login_lockouts",
    "Log-ins refused by the lockout (AXES_FAILURE_LIMIT failures for a username and address).",
)
SESSIONS_ENDED = counter(
    "ispsupport_sessions_ended",
    "Sessions ended by the system or an administrator, by reason (revoked, idle, "
    "password_changed…); log-outs are counted in ispsupport_logouts_total.",
    ["reason"],
)
API_TOKEN_AUTH = counter(
    "ispsupport_api_token_authentications",
    "API requests carrying a personal token, by result (ok, invalid: bad, expired or revoked).",
    ["result"],
    initial=[("ok",), ("invalid",)],
)


def sessions_ended(reason: str, count: int) -> None:
    if count:
        SESSIONS_ENDED.labels(reason=label(reason)).inc(count)


def _logged_in(**_kwargs: Any) -> None:
    LOGINS.labels(result="success").inc()


def _login_failed(**_kwargs: Any) -> None:
    LOGINS.labels(result="failure").inc()


def _logged_out(**_kwargs: Any) -> None:
    LOGOUTS.inc()


def _locked_out(**_kwargs: Any) -> None:
    LOCKOUTS.inc()


def _collect_state() -> Iterable[Metric]:
    from accounts.models import UserSession

    yield GaugeMetricFamily(
        "ispsupport_sessions_active",
        "Staff sessions not ended (logged in on some device; idle ones end at the next request).",
        value=UserSession.objects.filter(ended_at__isnull=True).count(),
    )


def connect() -> None:
    from axes.signals import user_locked_out
    from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed

    user_logged_in.connect(_logged_in, dispatch_uid="metrics.logged_in")
    user_login_failed.connect(_login_failed, dispatch_uid="metrics.login_failed")
    user_logged_out.connect(_logged_out, dispatch_uid="metrics.logged_out")
    user_locked_out.connect(_locked_out, dispatch_uid="metrics.locked_out")
    register_state_collector("accounts", _collect_state)

"""Reads for the account pages and admin."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import ApiToken, User, UserSession


def session_list_active_for_user(*, user: User) -> QuerySet[UserSession]:
    """The user's sessions still in use (not ended, not idle past the timeout), newest use first."""
    qs = UserSession.objects.filter(user=user, ended_at__isnull=True)
    minutes = settings.SESSION_IDLE_TIMEOUT_MINUTES
    if minutes:
        qs = qs.filter(last_seen_at__gte=timezone.now() - timedelta(minutes=minutes + 1))
    return qs.order_by("-last_seen_at")


def api_token_list_for_user(*, user: User) -> QuerySet[ApiToken]:
    """The user's tokens, newest first (revoked and expired ones included, marked)."""
    return ApiToken.objects.filter(user=user).order_by("-created_at")

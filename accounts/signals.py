"""Receivers for Django's log-in and log-out signals (connected in ``AccountsConfig.ready``)."""

from __future__ import annotations

from typing import Any

from accounts import services
from ispsupport.security import client_ip


def record_login(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if request is None or not hasattr(request, "session"):
        return
    services.session_record_login(
        user=user,
        session=request.session,
        ip=client_ip(request) or None,
        user_agent=request.META.get("HTTP_USER_AGENT", ""),
    )


def record_logout(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if request is not None and hasattr(request, "session"):
        services.session_record_logout(session=request.session)

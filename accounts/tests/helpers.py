"""Test helpers for logged-in clients."""

from __future__ import annotations

from typing import Any

from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice


def login_verified(client: Any, user: Any) -> TOTPDevice:
    """Log ``client`` in as ``user`` with a verified second factor, as after a real log-in and
    TOTP check (``force_login`` alone leaves the session unverified, so 2FA-required roles are
    sent to ``/accounts/2fa/``). Uses the user's confirmed authenticator, creating one if needed.
    """
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="Teste", confirmed=True)
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return device

"""Helpers for compliance tests: a staff client whose session passed 2FA."""

from __future__ import annotations

import pytest


def login_verified(client, user):
    """Log ``user`` in with a session already verified by a confirmed TOTP device."""
    from django_otp import DEVICE_ID_SESSION_KEY

    from accounts.tests.helpers import verified_device

    device = verified_device(user)
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client


@pytest.fixture
def dpo_client(client, dpo):
    return login_verified(client, dpo)


@pytest.fixture
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "media"

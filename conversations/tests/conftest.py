"""Fixtures for the console tests: an isolated channel layer and socket helpers."""

from __future__ import annotations

import uuid

import pytest
from django.conf import settings as django_settings


@pytest.fixture
def isolated_channel_layer(settings):
    """The configured layer (Redis pub/sub with REDIS_URL, in-memory otherwise) under a prefix
    of its own: Redis pub/sub channels ignore the database number, so parallel test runs on one
    Redis would otherwise hear each other's events."""
    layers = {k: dict(v) for k, v in django_settings.CHANNEL_LAYERS.items()}
    default = layers["default"]
    if "redis" in default["BACKEND"]:
        default["CONFIG"] = {**default.get("CONFIG", {}), "prefix": f"t{uuid.uuid4().hex[:10]}"}
    settings.CHANNEL_LAYERS = layers
    yield


def login(client, user) -> None:
    """Log ``client`` in as ``user`` with the second factor verified in the session (as after
    a real log-in with a code), creating an authenticator for roles that require one."""
    from django_otp import DEVICE_ID_SESSION_KEY, devices_for_user

    from accounts.tests.helpers import verified_device

    client.force_login(user)
    device = next(iter(devices_for_user(user)), None)
    if device is None:
        device = verified_device(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()


@pytest.fixture
def console_client(client):
    """``console_client(user)``: the test client logged in as ``user`` (2FA verified)."""

    def _as(user):
        login(client, user)
        return client

    return _as


@pytest.fixture
def role_groups_survive_flush():
    """A transactional test ends with a flush of every table, role groups included (a data
    migration wrote them); write them again when the flush's post_migrate signal has run for
    the last app, so later tests in this process still find them."""
    from django.apps import apps
    from django.db.models.signals import post_migrate

    from accounts.roles import sync_role_groups

    # The last app that receives post_migrate: only apps with models do.
    last_app = [c for c in apps.get_app_configs() if c.models_module][-1].label

    def _restore(sender, **kwargs):
        if getattr(sender, "label", None) != last_app:
            return
        from django.contrib.auth.models import Group, Permission

        post_migrate.disconnect(_restore)
        sync_role_groups(Group, Permission)

    post_migrate.connect(_restore, weak=False)
    yield

"""Log-in sessions: listed, ended one by one or all, by their owner or an admin; idle timeout;
password change; and the WebSocket close message on the channel layer."""

import asyncio
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from django.test import Client
from django.utils import timezone

from accounts import services
from accounts.models import UserSession
from accounts.tests.helpers import login_verified

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery-9"


def _login(user, **extra) -> Client:
    client = Client(**extra)
    response = client.post("/accounts/login/", {"username": user.username, "password": PASSWORD})
    assert response.status_code == 302
    return client


def _is_anonymous(client: Client) -> bool:
    response = client.get("/accounts/sessions/")
    return response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_each_login_is_recorded_with_device_and_ip(agent):
    _login(agent, HTTP_USER_AGENT="Firefox/140 (Linux)", REMOTE_ADDR="203.0.113.9")
    record = UserSession.objects.get(user=agent)
    assert record.user_agent == "Firefox/140 (Linux)"
    assert record.ip_address == "203.0.113.9"
    assert record.ended_at is None
    assert len(record.key_hash) == 64


def test_the_session_key_is_not_stored_in_clear(agent):
    client = _login(agent)
    key = client.session.session_key
    record = UserSession.objects.get(user=agent)
    assert record.session_key == key  # readable through the field…
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT session_key FROM accounts_usersession WHERE id = %s", [record.pk])
        assert cursor.fetchone()[0] != key  # …ciphertext in the column


def test_the_user_sees_their_sessions_and_ends_another(agent):
    laptop = _login(agent, HTTP_USER_AGENT="Laptop")
    phone = _login(agent, HTTP_USER_AGENT="Phone")
    page = laptop.get("/accounts/sessions/").content.decode()
    assert "Laptop" in page and "Phone" in page and "esta sessão" in page

    phone_record = UserSession.objects.get(user_agent="Phone")
    response = laptop.post(f"/accounts/sessions/{phone_record.pk}/end/")
    assert response.status_code == 302
    assert _is_anonymous(phone)
    assert not _is_anonymous(laptop)
    phone_record.refresh_from_db()
    assert phone_record.end_reason == UserSession.EndReason.REVOKED


def test_ending_all_other_sessions_keeps_this_one(agent):
    here = _login(agent)
    others = [_login(agent) for _ in range(2)]
    here.post("/accounts/sessions/end-others/")
    assert all(_is_anonymous(c) for c in others)
    assert not _is_anonymous(here)


def test_a_user_cannot_end_someone_elses_session(agent, other_agent):
    mine = _login(agent)
    theirs = _login(other_agent)
    record = UserSession.objects.get(user=other_agent)
    assert mine.post(f"/accounts/sessions/{record.pk}/end/").status_code == 404
    assert not _is_anonymous(theirs)


def test_an_admin_ends_every_session_of_a_user(agent, admin_member):
    sessions = [_login(agent) for _ in range(2)]
    admin_client = Client()
    login_verified(admin_client, admin_member)
    response = admin_client.post(
        "/admin/accounts/user/",
        {"action": "end_all_sessions", "_selected_action": [str(agent.pk)], "index": 0},
    )
    assert response.status_code == 302
    assert all(_is_anonymous(c) for c in sessions)
    assert not UserSession.objects.filter(user=agent, ended_at__isnull=True).exists()


def test_logout_ends_the_record(agent):
    client = _login(agent)
    client.post("/accounts/logout/")
    record = UserSession.objects.get(user=agent)
    assert record.end_reason == UserSession.EndReason.LOGOUT


def test_idle_sessions_end_after_the_configured_time(agent, settings):
    settings.SESSION_IDLE_TIMEOUT_MINUTES = 30
    client = _login(agent)
    UserSession.objects.filter(user=agent).update(
        last_seen_at=timezone.now() - timedelta(minutes=32)
    )
    assert _is_anonymous(client)
    assert UserSession.objects.get(user=agent).end_reason == UserSession.EndReason.IDLE


def test_recent_activity_keeps_the_session_and_last_seen_is_written_at_most_once_a_minute(
    agent, settings
):
    settings.SESSION_IDLE_TIMEOUT_MINUTES = 30
    client = _login(agent)
    before = timezone.now() - timedelta(minutes=20)
    UserSession.objects.filter(user=agent).update(last_seen_at=before)
    assert not _is_anonymous(client)
    first = UserSession.objects.get(user=agent).last_seen_at
    assert first > before
    assert not _is_anonymous(client)
    assert UserSession.objects.get(user=agent).last_seen_at == first  # < 1 min: no write


def test_a_password_change_ends_the_other_sessions_and_keeps_this_one(agent):
    here = _login(agent)
    elsewhere = _login(agent)
    response = here.post(
        "/accounts/password/",
        {
            "old_password": PASSWORD,
            "new_password1": "outra-senha-bem-longa-42",
            "new_password2": "outra-senha-bem-longa-42",
        },
    )
    assert response.status_code == 302
    assert _is_anonymous(elsewhere)
    assert not _is_anonymous(here)
    # the kept session's record follows its new key
    active = UserSession.objects.get(user=agent, ended_at__isnull=True)
    assert active.key_hash == services.hash_key(here.session.session_key)


def test_an_admin_setting_a_password_ends_every_session(agent):
    client = _login(agent)
    agent.set_password("definida-pelo-admin-99")
    agent.save()
    assert _is_anonymous(client)


def test_ending_a_session_tells_the_users_websockets_to_close(
    agent, django_capture_on_commit_callbacks
):
    """The console's consumer joins ``user.<uuid>`` and closes on ``session.revoked``."""
    laptop = _login(agent, HTTP_USER_AGENT="Laptop")
    _login(agent, HTTP_USER_AGENT="Phone")
    phone = UserSession.objects.get(user_agent="Phone")
    layer = get_channel_layer()
    group = services.user_channel_group(agent.pk)
    assert group == f"user.{agent.pk}"

    async def scenario():
        channel = await layer.new_channel()
        await layer.group_add(group, channel)
        try:

            def revoke():
                with django_capture_on_commit_callbacks(execute=True):
                    return laptop.post(f"/accounts/sessions/{phone.pk}/end/")

            response = await sync_to_async(revoke)()
            assert response.status_code == 302
            return await asyncio.wait_for(layer.receive(channel), timeout=5)
        finally:
            await layer.group_discard(group, channel)

    message = async_to_sync(scenario)()
    assert message["type"] == "session.revoked"
    assert message["session_key_hashes"] == [phone.key_hash]

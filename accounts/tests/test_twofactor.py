"""Two-factor authentication: enforcement, enrolment with a QR code, backup codes, admin reset."""

import base64
import re
from datetime import UTC, datetime

import pytest
from django.db import connection
from django_otp.oath import TOTP

from accounts.devices import AuthenticatorDevice, BackupCode, BackupCodeDevice
from accounts.models import Role
from accounts.tests.factories import UserFactory
from accounts.tests.helpers import login_verified

pytestmark = pytest.mark.django_db


def current_code(device: AuthenticatorDevice) -> str:
    """What the authenticator app on the phone shows now."""
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    return f"{totp.token():0{device.digits}d}"


def test_admin_without_a_device_is_sent_to_enrolment_from_admin(client, admin_member):
    client.force_login(admin_member)
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/2fa/setup/?next=%2Fadmin%2F")


@pytest.mark.parametrize("role", [Role.SUPERVISOR, Role.DPO])
def test_supervisor_and_dpo_cannot_reach_admin_or_console_unverified(client, role):
    user = UserFactory(role=role)
    AuthenticatorDevice.objects.create(user=user, name="Celular", confirmed=True)
    client.force_login(user)
    for path in ("/admin/", "/console/", "/accounts/sessions/"):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response["Location"].startswith("/accounts/2fa/verify/"), path


def test_admin_with_a_verified_device_gets_in(client, admin_member):
    login_verified(client, admin_member)
    assert client.get("/admin/").status_code == 200


def test_unverified_session_api_call_gets_403_json(client, supervisor):
    client.force_login(supervisor)
    response = client.get("/api/v1/conversations/")
    assert response.status_code == 403
    assert "duas etapas" in response.json()["detail"]


def test_agent_is_not_required_by_default(client, agent):
    client.force_login(agent)
    assert client.get("/accounts/sessions/").status_code == 200


def test_agent_is_required_when_configured(client, agent, settings):
    settings.OTP_REQUIRED_FOR_AGENTS = True
    client.force_login(agent)
    response = client.get("/accounts/sessions/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/2fa/setup/")


def test_exempt_paths_stay_reachable_while_unverified(client, admin_member):
    client.force_login(admin_member)
    assert client.get("/healthz").status_code == 200
    assert client.get("/accounts/2fa/setup/").status_code == 200


def test_enrolment_shows_a_qr_code_and_confirming_shows_backup_codes_once(client, admin_member):
    client.force_login(admin_member)
    page = client.get("/accounts/2fa/setup/")
    html = page.content.decode()
    assert 'src="data:image/svg+xml;base64,' in html
    device = AuthenticatorDevice.objects.get(user=admin_member, confirmed=False)

    confirmed = client.post("/accounts/2fa/setup/", {"token": current_code(device)})
    assert confirmed.status_code == 200
    codes = re.findall(r"<li><code>([a-z2-7]{8})</code></li>", confirmed.content.decode())
    assert len(codes) == 10
    assert BackupCode.objects.filter(device__user=admin_member).count() == 10
    device.refresh_from_db()
    assert device.confirmed
    # verified in this session now
    assert client.get("/admin/").status_code == 200
    # the codes are never shown again
    assert codes[0] not in client.get("/accounts/").content.decode()


def test_a_wrong_enrolment_code_is_refused(client, admin_member):
    client.force_login(admin_member)
    client.get("/accounts/2fa/setup/")
    device = AuthenticatorDevice.objects.get(user=admin_member, confirmed=False)
    wrong = "000000" if current_code(device) != "000000" else "111111"
    response = client.post("/accounts/2fa/setup/", {"token": wrong})
    assert "Código incorreto" in response.content.decode()
    device.refresh_from_db()
    assert not device.confirmed
    assert client.get("/admin/").status_code == 302


def test_a_backup_code_verifies_once(client, dpo):
    AuthenticatorDevice.objects.create(user=dpo, name="Celular", confirmed=True)
    from accounts.services import backup_codes_regenerate

    code = backup_codes_regenerate(user=dpo)[0]
    client.force_login(dpo)
    response = client.post("/accounts/2fa/verify/?next=/admin/", {"token": code})
    assert response.status_code == 302 and response["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200

    other = type(client)()
    other.force_login(dpo)
    again = other.post("/accounts/2fa/verify/", {"token": code})
    assert again.status_code == 200
    assert "Código incorreto ou já utilizado" in again.content.decode()


def test_verify_with_the_app_code(client, supervisor):
    device = AuthenticatorDevice.objects.create(user=supervisor, name="Celular", confirmed=True)
    client.force_login(supervisor)
    response = client.post(
        "/accounts/2fa/verify/", {"token": current_code(device), "next": "/admin/"}
    )
    assert response.status_code == 302 and response["Location"] == "/admin/"


def test_verify_refuses_an_open_redirect(client, supervisor):
    device = AuthenticatorDevice.objects.create(user=supervisor, name="Celular", confirmed=True)
    client.force_login(supervisor)
    response = client.post(
        "/accounts/2fa/verify/", {"token": current_code(device), "next": "https://evil.example/"}
    )
    assert response["Location"] == "/accounts/"


def _admin_action(client, action, user):
    return client.post(
        "/admin/accounts/user/",
        {"action": action, "_selected_action": [str(user.pk)], "index": 0},
    )


def test_an_admin_resets_a_users_devices_and_ends_their_sessions(client, admin_member, agent):
    AuthenticatorDevice.objects.create(user=agent, name="Celular", confirmed=True)
    from accounts.services import backup_codes_regenerate

    backup_codes_regenerate(user=agent)
    agent_client = type(client)()
    login_verified(agent_client, agent)
    login_verified(client, admin_member)

    response = _admin_action(client, "reset_two_factor", agent)
    assert response.status_code == 302
    assert not AuthenticatorDevice.objects.filter(user=agent).exists()
    assert not BackupCodeDevice.objects.filter(user=agent).exists()
    # the agent's session ended: next request is anonymous
    assert agent_client.get("/accounts/sessions/")["Location"].startswith("/accounts/login/")


def test_a_supervisor_cannot_reset_devices(client, supervisor, agent):
    AuthenticatorDevice.objects.create(user=agent, name="Celular", confirmed=True)
    login_verified(client, supervisor)
    response = _admin_action(client, "reset_two_factor", agent)
    # supervisors may view users but the action is not offered (nor accepted)
    assert response.status_code in (200, 302, 403)
    assert AuthenticatorDevice.objects.filter(user=agent, name="Celular").exists()


def test_demo_device_is_refused_without_debug(settings, agent):
    from accounts.services import demo_totp_device_seed

    settings.DEBUG = False
    with pytest.raises(RuntimeError):
        demo_totp_device_seed(user=agent, key_hex="00" * 20)


# --- the second factor's secrets at rest ------------------------------------------------------


def _every_cell() -> str:
    """Every cell of every table, as SQL returns it (what a database dump holds)."""
    cells = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608
            for record in cursor.fetchall():
                for value in record:
                    if isinstance(value, memoryview):
                        value = value.tobytes()
                    if isinstance(value, bytes):
                        value = value.decode("latin-1")
                    cells.append(str(value))
    return "\n".join(cells).lower()


def test_the_authenticator_secret_and_backup_codes_are_not_in_the_database(client, admin_member):
    """LGPD art. 46 / Decreto 8.771 art. 13 II: a dump of the database must not let anyone
    compute a staff member's codes. Enrolment shows the secret (QR code and text) and the
    backup codes; neither is readable in any table afterwards, and both still work."""
    client.force_login(admin_member)
    page = client.get("/accounts/2fa/setup/").content.decode()
    secret_b32 = re.search(r"<code[^>]*>([A-Z2-7 ]{32,})</code>", page)[1].replace(" ", "")
    device = AuthenticatorDevice.objects.get(user=admin_member, confirmed=False)
    secret_hex = device.bin_key.hex()
    assert base64.b32encode(device.bin_key).decode() == secret_b32  # what the page showed

    confirmed = client.post("/accounts/2fa/setup/", {"token": current_code(device)})
    codes = re.findall(r"<li><code>([a-z2-7]{8})</code></li>", confirmed.content.decode())
    assert len(codes) == 10

    dump = _every_cell()
    assert secret_hex not in dump and secret_b32.lower() not in dump
    leaked = [code for code in codes if code in dump]
    assert not leaked, f"backup codes stored in clear: {leaked}"

    # …and they still verify: the app's code in one session, a backup code in another.
    other = type(client)()
    other.force_login(admin_member)
    assert other.post("/accounts/2fa/verify/", {"token": codes[3]}).status_code == 302
    assert BackupCode.objects.filter(device__user=admin_member).count() == 9


def test_an_app_code_is_accepted_once(client, supervisor):
    """A code seen over someone's shoulder cannot be replayed in the same 30 s window."""
    device = AuthenticatorDevice.objects.create(user=supervisor, name="Celular", confirmed=True)
    code = current_code(device)
    client.force_login(supervisor)
    assert client.post("/accounts/2fa/verify/", {"token": code}).status_code == 302
    other = type(client)()
    other.force_login(supervisor)
    again = other.post("/accounts/2fa/verify/", {"token": code})
    assert again.status_code == 200 and "Código incorreto" in again.content.decode()


def test_the_secret_is_rotated_with_the_other_encrypted_fields(settings, supervisor):
    from io import StringIO

    from cryptography.fernet import Fernet
    from django.core.management import call_command

    old = settings.FIELD_ENCRYPTION_KEYS[0]
    device = AuthenticatorDevice.objects.create(user=supervisor, name="Celular", confirmed=True)
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode(), old]
    call_command("rotate_encryption_keys", "--no-files", stdout=StringIO(), stderr=StringIO())
    settings.FIELD_ENCRYPTION_KEYS = settings.FIELD_ENCRYPTION_KEYS[:1]  # old key dropped
    fresh = AuthenticatorDevice.objects.get(pk=device.pk)  # readable with the new key only
    assert fresh.bin_key == device.bin_key


def test_the_upgrade_moves_the_plugins_devices_encrypted_and_hashed(supervisor):
    """Migration 0007 on a database that used django-otp's otp_totp/otp_static plugins: each
    device moves (secret encrypted, codes hashed, still usable) and the plugin tables go."""
    import importlib
    from types import SimpleNamespace

    from django.apps import apps as django_apps

    migration = importlib.import_module("accounts.migrations.0007_encrypted_otp_devices")
    key_hex = "3132333435363738393031323334353637383930"
    user_id = supervisor.pk.hex  # how SQLite stores a UUID key (no dashes)
    with connection.cursor() as cursor:  # the plugins' tables, as django-otp 1.7 left them
        cursor.execute(
            "CREATE TABLE otp_totp_totpdevice (id integer PRIMARY KEY, user_id varchar(40), "
            "name varchar(64), confirmed boolean, key varchar(80), step smallint, t0 bigint, "
            "digits smallint, tolerance smallint, drift smallint, last_t bigint, "
            "throttling_failure_count integer, throttling_failure_timestamp timestamp NULL, "
            "created_at timestamp NULL, last_used_at timestamp NULL)"
        )
        cursor.execute(
            "INSERT INTO otp_totp_totpdevice VALUES "
            "(7, %s, 'Celular', %s, %s, 30, 0, 6, 1, 0, -1, 0, NULL, '2026-01-02 03:04:05', NULL)",
            [user_id, True, key_hex.upper()],
        )
        cursor.execute(
            "CREATE TABLE otp_static_staticdevice (id integer PRIMARY KEY, user_id varchar(40), "
            "name varchar(64), confirmed boolean)"
        )
        cursor.execute(
            "INSERT INTO otp_static_staticdevice VALUES (3, %s, 'backup', %s)", [user_id, True]
        )
        cursor.execute(
            "CREATE TABLE otp_static_statictoken (id integer PRIMARY KEY, device_id integer, "
            "token varchar(16))"
        )
        cursor.execute(
            "INSERT INTO otp_static_statictoken VALUES (1, 3, 'abcd2345'), (2, 3, 'wxyz6789')"
        )

    migration.move_plugin_devices(django_apps, SimpleNamespace(connection=connection))

    tables = set(connection.introspection.table_names())
    assert not {"otp_totp_totpdevice", "otp_static_staticdevice", "otp_static_statictoken"} & tables
    device = AuthenticatorDevice.objects.get(user=supervisor)
    assert device.name == "Celular" and device.confirmed and device.key == key_hex
    assert device.created_at == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)  # kept, made aware
    dump = _every_cell()
    assert key_hex not in dump and "abcd2345" not in dump and "wxyz6789" not in dump
    backup = BackupCodeDevice.objects.get(user=supervisor)
    assert backup.verify_token("ABCD 2345") and not backup.verify_token("abcd2345")
    assert backup.codes.count() == 1

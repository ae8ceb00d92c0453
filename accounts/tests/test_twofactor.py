"""Two-factor authentication: enforcement, enrolment with a QR code, backup codes, admin reset."""

import re

import pytest
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import Role
from accounts.tests.factories import UserFactory
from accounts.tests.helpers import login_verified

pytestmark = pytest.mark.django_db


def current_code(device: TOTPDevice) -> str:
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
    TOTPDevice.objects.create(user=user, name="Celular", confirmed=True)
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
    device = TOTPDevice.objects.get(user=admin_member, confirmed=False)

    confirmed = client.post("/accounts/2fa/setup/", {"token": current_code(device)})
    assert confirmed.status_code == 200
    codes = re.findall(r"<li><code>([a-z2-7]{8})</code></li>", confirmed.content.decode())
    assert len(codes) == 10
    assert set(StaticToken.objects.values_list("token", flat=True)) == set(codes)
    device.refresh_from_db()
    assert device.confirmed
    # verified in this session now
    assert client.get("/admin/").status_code == 200
    # the codes are never shown again
    assert codes[0] not in client.get("/accounts/").content.decode()


def test_a_wrong_enrolment_code_is_refused(client, admin_member):
    client.force_login(admin_member)
    client.get("/accounts/2fa/setup/")
    device = TOTPDevice.objects.get(user=admin_member, confirmed=False)
    wrong = "000000" if current_code(device) != "000000" else "111111"
    response = client.post("/accounts/2fa/setup/", {"token": wrong})
    assert "Código incorreto" in response.content.decode()
    device.refresh_from_db()
    assert not device.confirmed
    assert client.get("/admin/").status_code == 302


def test_a_backup_code_verifies_once(client, dpo):
    TOTPDevice.objects.create(user=dpo, name="Celular", confirmed=True)
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
    device = TOTPDevice.objects.create(user=supervisor, name="Celular", confirmed=True)
    client.force_login(supervisor)
    response = client.post(
        "/accounts/2fa/verify/", {"token": current_code(device), "next": "/admin/"}
    )
    assert response.status_code == 302 and response["Location"] == "/admin/"


def test_verify_refuses_an_open_redirect(client, supervisor):
    device = TOTPDevice.objects.create(user=supervisor, name="Celular", confirmed=True)
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
    TOTPDevice.objects.create(user=agent, name="Celular", confirmed=True)
    agent_client = type(client)()
    login_verified(agent_client, agent)
    login_verified(client, admin_member)

    response = _admin_action(client, "reset_two_factor", agent)
    assert response.status_code == 302
    assert not TOTPDevice.objects.filter(user=agent).exists()
    # the agent's session ended: next request is anonymous
    assert agent_client.get("/accounts/sessions/")["Location"].startswith("/accounts/login/")


def test_a_supervisor_cannot_reset_devices(client, supervisor, agent):
    TOTPDevice.objects.create(user=agent, name="Celular", confirmed=True)
    login_verified(client, supervisor)
    response = _admin_action(client, "reset_two_factor", agent)
    # supervisors may view users but the action is not offered (nor accepted)
    assert response.status_code in (200, 302, 403)
    assert TOTPDevice.objects.filter(user=agent, name="Celular").exists()


def test_demo_device_is_refused_without_debug(settings, agent):
    from accounts.services import demo_totp_device_seed

    settings.DEBUG = False
    with pytest.raises(RuntimeError):
        demo_totp_device_seed(user=agent, key_hex="00" * 20)

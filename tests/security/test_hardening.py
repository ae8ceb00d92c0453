"""Production hardening: check --deploy is clean, security headers, CORS, IP allowlists."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.test import Client

import ispsupport.settings as settings_module
from accounts.tests.helpers import login_verified

ROOT = Path(__file__).resolve().parent.parent.parent


def _production_env() -> dict[str, str]:
    """DEBUG off and a value for every required setting (_require's list, read from settings)."""
    env = {k: v for k, v in os.environ.items() if k not in settings_module._DEV_SECRETS}
    env.update({name: "prod-" + "x" * 58 for name in settings_module._DEV_SECRETS})
    env.update(
        {
            "DEBUG": "0",
            "SECRET_KEY": "k3-" + Fernet.generate_key().decode() + Fernet.generate_key().decode(),
            "ALLOWED_HOSTS": "suporte.example.com.br",
            "CSRF_TRUSTED_ORIGINS": "https://suporte.example.com.br",
            "WHATSAPP_PHONE_NUMBER_ID": "100000000000001",
            "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
            "BLIND_INDEX_KEY": "b" * 48,
        }
    )
    return env


def test_check_deploy_reports_nothing_in_production():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=_production_env(),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_blind_index_key_is_required_in_production():
    env = _production_env()
    env.pop("BLIND_INDEX_KEY")
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode != 0
    assert "BLIND_INDEX_KEY" in result.stderr


@pytest.mark.django_db
def test_pages_carry_csp_without_unsafe_inline_scripts_and_other_headers(client):
    response = client.get("/accounts/login/")
    csp = response["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert "'unsafe-inline'" not in directives["script-src"]
    assert directives["frame-ancestors"] == "'none'"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "camera=()" in response["Permissions-Policy"]


@pytest.mark.django_db
def test_cors_is_closed_unless_origins_are_listed(client, settings):
    preflight = {
        "HTTP_ORIGIN": "https://erp.example.com",
        "HTTP_ACCESS_CONTROL_REQUEST_METHOD": "GET",
    }
    closed = client.options("/api/v1/conversations/", **preflight)
    assert "Access-Control-Allow-Origin" not in closed
    settings.CORS_ALLOWED_ORIGINS = ["https://erp.example.com"]
    opened = client.options("/api/v1/conversations/", **preflight)
    assert opened["Access-Control-Allow-Origin"] == "https://erp.example.com"
    other = client.options("/api/v1/conversations/", HTTP_ORIGIN="https://evil.example")
    assert "Access-Control-Allow-Origin" not in other


@pytest.mark.django_db
def test_admin_allowlist_refuses_other_addresses(settings, admin_member):
    settings.ADMIN_IP_ALLOWLIST = ["10.20.0.0/16", "2001:db8::/32"]
    outside = Client(REMOTE_ADDR="203.0.113.5")
    login_verified(outside, admin_member)
    assert outside.get("/admin/").status_code == 403
    # a forged X-Forwarded-For is ignored without trusted proxies
    assert outside.get("/admin/", HTTP_X_FORWARDED_FOR="10.20.1.1").status_code == 403
    inside = Client(REMOTE_ADDR="10.20.3.4")
    login_verified(inside, admin_member)
    assert inside.get("/admin/").status_code == 200
    # other areas are not affected
    assert outside.get("/accounts/").status_code == 200


@pytest.mark.django_db
def test_api_allowlist_and_trusted_proxy(settings, agent):
    settings.API_IP_ALLOWLIST = ["192.0.2.0/24"]
    settings.TRUSTED_PROXY_COUNT = 1
    client = Client(REMOTE_ADDR="10.0.0.2")  # the proxy
    login_verified(client, agent)
    assert (
        client.get("/api/v1/me/presence/", HTTP_X_FORWARDED_FOR="198.51.100.9").status_code == 403
    )
    allowed = client.get("/api/v1/me/presence/", HTTP_X_FORWARDED_FOR="6.6.6.6, 192.0.2.10")
    assert allowed.status_code == 200


def test_argon2_is_the_hasher_and_validators_are_on(settings):
    assert settings.PASSWORD_HASHERS[0].endswith("Argon2PasswordHasher")
    names = [v["NAME"].rsplit(".", 1)[-1] for v in settings.AUTH_PASSWORD_VALIDATORS]
    assert {"MinimumLengthValidator", "CommonPasswordValidator", "NumericPasswordValidator"} <= set(
        names
    )

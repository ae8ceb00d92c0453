"""The settings module: embedded default, and a loud refusal in production without secrets."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run_check(env_overrides: dict[str, str]) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WHATSAPP_", "SECRET_KEY"))}
    env.pop("FIELD_ENCRYPTION_KEYS", None)
    env.pop("BLIND_INDEX_KEY", None)
    env.pop("ALLOWED_HOSTS", None)
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_debug_off_without_secrets_refuses_to_start_naming_them():
    result = _run_check({"DEBUG": "0"})
    assert result.returncode != 0
    for name in ("SECRET_KEY", "ALLOWED_HOSTS", "WHATSAPP_APP_SECRET", "FIELD_ENCRYPTION_KEYS"):
        assert name in result.stderr


def test_debug_off_with_every_secret_starts():
    result = _run_check(
        {
            "DEBUG": "0",
            "SECRET_KEY": "x" * 60,
            "ALLOWED_HOSTS": "support.example.com",
            "WHATSAPP_APP_SECRET": "s",
            "WHATSAPP_VERIFY_TOKEN": "v",
            "WHATSAPP_ACCESS_TOKEN": "t",
            "WHATSAPP_PHONE_NUMBER_ID": "1,2",
            "FIELD_ENCRYPTION_KEYS": "ZGV2LW9ubHktZmllbGQta2V5LWRvLW5vdC11c2UtISE=",
            "BLIND_INDEX_KEY": "b" * 48,
        }
    )
    assert result.returncode == 0, result.stderr


def test_embedded_default_is_sao_paulo_and_portuguese(settings):
    assert settings.TIME_ZONE == "America/Sao_Paulo"
    assert settings.LANGUAGE_CODE == "pt-br"
    assert [code for code, _name in settings.LANGUAGES] == ["pt-br", "en"]
    assert "django.middleware.locale.LocaleMiddleware" in settings.MIDDLEWARE


def test_a_claim_lease_shorter_than_a_delivery_attempt_is_refused_naming_the_minimum():
    # Two Graph calls of up to 3 + 10 s each: a shorter lease would let a second worker send
    # a reply the first one is still sending.
    result = _run_check({"WHATSAPP_CLAIM_LEASE_SECONDS": "20"})
    assert result.returncode != 0
    assert "WHATSAPP_CLAIM_LEASE_SECONDS must exceed two Graph calls: at least 28 s" in (
        result.stderr
    )
    shorter_calls = {"WHATSAPP_CLAIM_LEASE_SECONDS": "20", "WHATSAPP_HTTP_TIMEOUT_SECONDS": "3"}
    assert _run_check(shorter_calls).returncode == 0

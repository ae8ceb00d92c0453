"""Field encryption at rest, key rotation and the blind index."""

import io
import json

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import FieldError
from django.core.management import call_command
from django.db import connection, models
from django.test.utils import isolate_apps

from ispsupport import crypto
from ispsupport.crypto import EncryptedJSONField, EncryptedTextField, blind_index
from whatsapp.models import WebhookEvent

pytestmark = pytest.mark.django_db

KEY_OLD = Fernet.generate_key().decode()
KEY_NEW = Fernet.generate_key().decode()
BODY = json.dumps({"from": "5511987654321", "text": {"body": "meu CPF é 123.456.789-09"}})


def _raw_body(pk: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT body FROM {WebhookEvent._meta.db_table} WHERE id = %s", [pk])  # noqa: S608
        return cursor.fetchone()[0]


def _event(body: str = BODY) -> WebhookEvent:
    return WebhookEvent.objects.create(body=body, body_sha256="0" * 64)


def test_the_webhook_body_is_ciphertext_in_the_column_and_plaintext_in_python():
    event = _event()
    raw = _raw_body(event.pk)
    assert raw.startswith(crypto.TOKEN_PREFIX)
    assert "5511987654321" not in raw and "123.456.789-09" not in raw
    assert WebhookEvent.objects.get(pk=event.pk).body == BODY


def test_encrypted_fields_refuse_filters_that_cannot_work():
    with pytest.raises(FieldError, match="blind-index"):
        list(WebhookEvent.objects.filter(body=BODY))
    assert WebhookEvent.objects.filter(body__isnull=True).count() == 0


def test_rotation_reencrypts_everything_and_the_old_key_can_be_dropped(settings):
    settings.FIELD_ENCRYPTION_KEYS = [KEY_OLD]
    events = [_event(f'{{"n": {i}}}') for i in range(7)]
    before = {e.pk: _raw_body(e.pk) for e in events}

    settings.FIELD_ENCRYPTION_KEYS = [KEY_NEW, KEY_OLD]  # new key first
    assert WebhookEvent.objects.get(pk=events[0].pk).body == '{"n": 0}'  # old still readable
    out = io.StringIO()
    call_command("rotate_encryption_keys", "--batch-size", "3", stdout=out)
    report = out.getvalue()
    assert "whatsapp.WebhookEvent: 7 rows" in report
    assert "rotated 7 value(s)" in report
    assert all(_raw_body(pk) != raw for pk, raw in before.items())

    settings.FIELD_ENCRYPTION_KEYS = [KEY_NEW]  # old key dropped
    assert [e.body for e in WebhookEvent.objects.order_by("pk")] == [
        f'{{"n": {i}}}' for i in range(7)
    ]

    again = io.StringIO()  # resumable: a second run has nothing to do
    call_command("rotate_encryption_keys", stdout=again)
    assert "rotated 0 value(s), 7 already current" in again.getvalue()


def test_rotation_reports_values_no_key_can_read_and_exits_nonzero(settings):
    settings.FIELD_ENCRYPTION_KEYS = [KEY_OLD]
    _event()
    settings.FIELD_ENCRYPTION_KEYS = [KEY_NEW]  # the old key was dropped too early
    err = io.StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command("rotate_encryption_keys", stdout=io.StringIO(), stderr=err)
    assert exit_info.value.code == 1
    assert "do not drop old keys" in err.getvalue()


def test_dry_run_writes_nothing(settings):
    settings.FIELD_ENCRYPTION_KEYS = [KEY_OLD]
    event = _event()
    raw = _raw_body(event.pk)
    settings.FIELD_ENCRYPTION_KEYS = [KEY_NEW, KEY_OLD]
    out = io.StringIO()
    call_command("rotate_encryption_keys", "--dry-run", stdout=out)
    assert "would rotate 1 value(s)" in out.getvalue()
    assert _raw_body(event.pk) == raw


def test_blind_index_is_keyed_deterministic_and_separated_by_purpose(settings):
    a = blind_index("5511987654321", purpose="phone")
    assert a == blind_index("5511987654321", purpose="phone")
    assert a != blind_index("5511987654321", purpose="wa_id")
    assert a != blind_index("5511987654322", purpose="phone")
    assert len(a) == 64 and "5511987654321" not in a
    settings.BLIND_INDEX_KEY = "outra-chave-" + "x" * 40
    assert blind_index("5511987654321", purpose="phone") != a


@pytest.mark.django_db(transaction=True)
def test_exact_match_lookup_through_the_blind_index():
    with isolate_apps("accounts"):

        class Contact(models.Model):  # noqa: DJ008
            phone = EncryptedTextField()
            phone_index = models.CharField(max_length=64, db_index=True)
            profile = EncryptedJSONField(default=dict)

            class Meta:
                app_label = "accounts"

        with connection.schema_editor() as editor:
            editor.create_model(Contact)
        try:
            for phone in ("5511987654321", "5521912345678", "5531900001111"):
                Contact.objects.create(
                    phone=phone,
                    phone_index=blind_index(phone, purpose="phone"),
                    profile={"name": "Ana", "cpf": "12345678909"},
                )
            found = Contact.objects.get(phone_index=blind_index("5521912345678", purpose="phone"))
            assert found.phone == "5521912345678"
            assert found.profile == {"name": "Ana", "cpf": "12345678909"}
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT phone, profile FROM {Contact._meta.db_table}")  # noqa: S608
                for phone, profile in cursor.fetchall():
                    assert phone.startswith(crypto.TOKEN_PREFIX) and "9123" not in phone
                    assert "Ana" not in profile and "12345678909" not in profile
        finally:
            with connection.schema_editor() as editor:
                editor.delete_model(Contact)


def test_the_migration_encrypts_existing_plaintext_rows(settings):
    """0002_encrypt_webhook_body's data step: plaintext rows become ciphertext, idempotently."""
    import importlib

    from django.apps import apps as global_apps

    migration = importlib.import_module("whatsapp.migrations.0002_encrypt_webhook_body")
    event = _event()
    with connection.cursor() as cursor:  # a row written before the field was encrypted
        cursor.execute(
            f"UPDATE {WebhookEvent._meta.db_table} SET body = %s WHERE id = %s",  # noqa: S608
            [BODY, event.pk],
        )

    class PlainApps:
        """The migration state before the AlterField: body is a plain TextField."""

        @staticmethod
        def get_model(app_label, name):
            with isolate_apps("whatsapp"):

                class WebhookEventBefore(models.Model):  # noqa: DJ008
                    body = models.TextField()

                    class Meta:
                        app_label = "whatsapp"
                        db_table = WebhookEvent._meta.db_table

            return WebhookEventBefore

    migration.encrypt_bodies(PlainApps, None)
    migration.encrypt_bodies(PlainApps, None)  # running twice changes nothing
    assert _raw_body(event.pk).startswith(crypto.TOKEN_PREFIX)
    assert WebhookEvent.objects.get(pk=event.pk).body == BODY
    assert global_apps.get_model("whatsapp", "WebhookEvent") is WebhookEvent

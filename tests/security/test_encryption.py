"""Field encryption at rest, key rotation and the blind index."""

import io
import json

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import FieldError
from django.core.management import call_command
from django.db import connection, models
from django.test.utils import isolate_apps

from ispsupport import crypto, filecrypt
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


# --- rotation of customers' data and of stored files -------------------------------------------


def _raw_customer_name(pk: int) -> str:
    from conversations.models import Customer

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT name FROM {Customer._meta.db_table} WHERE id = %s", [pk])  # noqa: S608
        return cursor.fetchone()[0]


def test_rotation_covers_customers_messages_and_media_files(settings, tmp_path):
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    from conversations import services
    from conversations.identity import customers_by_identity
    from conversations.models import Message
    from conversations.tests.factories import ConversationFactory, MessageFactory

    settings.MEDIA_ROOT = str(tmp_path)
    settings.FIELD_ENCRYPTION_KEYS = [KEY_OLD]
    customer = services.customer_resolve(wa_id="551187651234", name="Joaquina Brandão")
    conversation = ConversationFactory(customer=customer)
    photo = MessageFactory(conversation=conversation, type="image", text="foto do roteador")
    photo.media_file.save("roteador.jpg", ContentFile(b"JPEG da Joaquina"), save=True)
    # A file stored before files were encrypted (written straight to disk, as it was then).
    legacy = MessageFactory(conversation=conversation, type="document", text="")
    (tmp_path / "media").mkdir(exist_ok=True)
    (tmp_path / "media" / "antigo.pdf").write_bytes(b"%PDF antigo da Joaquina")
    Message.objects.filter(pk=legacy.pk).update(media_file="media/antigo.pdf")
    old_name = _raw_customer_name(customer.pk)
    photo_path = tmp_path / photo.media_file.name
    old_photo = photo_path.read_bytes()

    settings.FIELD_ENCRYPTION_KEYS = [KEY_NEW, KEY_OLD]  # new key first: old data still readable
    assert default_storage.open(photo.media_file.name).read() == b"JPEG da Joaquina"
    assert default_storage.open("media/antigo.pdf").read() == b"%PDF antigo da Joaquina"
    out, err = io.StringIO(), io.StringIO()
    call_command("rotate_encryption_keys", "--batch-size", "1", stdout=out, stderr=err)
    report = out.getvalue()
    assert "conversations.Customer: 1 rows" in report
    assert "conversations.Message: 2 rows" in report
    assert (
        "conversations.Message.media_file: 2 file(s); rotated 1, 1 stored before encryption "
        "encrypted, 0 already current, 0 missing, 0 undecryptable"
    ) in report
    assert "done: every value and file is under the newest key" in report
    assert "[##############################] 2/2" in err.getvalue()  # the progress bar
    assert "[" not in report  # stdout is the report only
    assert _raw_customer_name(customer.pk) != old_name
    assert photo_path.read_bytes() != old_photo
    legacy_on_disk = (tmp_path / "media" / "antigo.pdf").read_bytes()
    assert legacy_on_disk.startswith(filecrypt.MAGIC) and b"Joaquina" not in legacy_on_disk

    settings.FIELD_ENCRYPTION_KEYS = [KEY_NEW]  # old key dropped: everything still readable
    assert list(customers_by_identity(phone="11987651234", national=True)) == [customer]
    fresh = customers_by_identity(wa_id="551187651234").get()
    assert fresh.name == "Joaquina Brandão"
    assert Message.objects.get(pk=photo.pk).text == "foto do roteador"
    assert default_storage.open(photo.media_file.name).read() == b"JPEG da Joaquina"
    assert default_storage.open("media/antigo.pdf").read() == b"%PDF antigo da Joaquina"

    again = io.StringIO()  # resumable: nothing left to do
    call_command("rotate_encryption_keys", stdout=again, stderr=io.StringIO())
    assert "2 file(s); rotated 0, 0 stored before encryption encrypted, 2 already current" in (
        again.getvalue()
    )


def test_rotation_refuses_to_bless_a_file_no_key_opens(settings, tmp_path):
    from django.core.files.base import ContentFile

    from conversations.tests.factories import MessageFactory

    settings.MEDIA_ROOT = str(tmp_path)
    settings.FIELD_ENCRYPTION_KEYS = [KEY_OLD]
    message = MessageFactory(type="image")
    message.media_file.save("x.jpg", ContentFile(b"bytes"), save=True)
    settings.FIELD_ENCRYPTION_KEYS = [KEY_NEW]  # the old key was dropped too early
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command("rotate_encryption_keys", "--model", "conversations.Message", stdout=out,
                     stderr=err)  # fmt: skip
    assert exit_info.value.code == 1
    assert "0 missing, 1 undecryptable" in out.getvalue()
    assert "do not drop old keys" in err.getvalue()


def test_no_files_leaves_stored_files_for_later(settings, tmp_path):
    from django.core.files.base import ContentFile

    from conversations.tests.factories import MessageFactory

    settings.MEDIA_ROOT = str(tmp_path)
    settings.FIELD_ENCRYPTION_KEYS = [KEY_OLD]
    message = MessageFactory(type="image")
    message.media_file.save("x.jpg", ContentFile(b"bytes"), save=True)
    before = (tmp_path / message.media_file.name).read_bytes()
    settings.FIELD_ENCRYPTION_KEYS = [KEY_NEW, KEY_OLD]
    out = io.StringIO()
    call_command("rotate_encryption_keys", "--no-files", stdout=out, stderr=io.StringIO())
    assert "media_file" not in out.getvalue()
    assert (tmp_path / message.media_file.name).read_bytes() == before


def test_an_altered_or_truncated_file_is_refused_not_served_short(settings, tmp_path):
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    settings.MEDIA_ROOT = str(tmp_path)
    data = bytes(range(256)) * 600  # three chunks
    name = default_storage.save("media/big.bin", ContentFile(data))
    path = tmp_path / name
    assert default_storage.size(name) == len(data)
    sealed = path.read_bytes()
    path.write_bytes(sealed[: filecrypt.HEADER_SIZE + filecrypt.CHUNK_SIZE + filecrypt.TAG_SIZE])
    with pytest.raises(filecrypt.FileDecryptionError):
        default_storage.open(name).read()
    flipped = bytearray(sealed)
    flipped[-1] ^= 1
    path.write_bytes(bytes(flipped))
    with pytest.raises(filecrypt.FileDecryptionError):
        default_storage.open(name).read()


# --- the data migrations of bot and compliance --------------------------------------------------


def _state_before_data_step(app_label: str, migration_name: str):
    """The state a migration's RunPython sees: earlier migrations plus its own schema steps."""
    import importlib

    from django.db.migrations.loader import MigrationLoader

    module = importlib.import_module(f"{app_label}.migrations.{migration_name}")
    state = MigrationLoader(connection).project_state(module.Migration.dependencies[0])
    for operation in module.Migration.operations:
        if operation.__class__.__name__ == "RunPython":
            break
        operation.state_forwards(app_label, state)
    return module, state.apps


def _raw(model, pk: int, column: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {column} FROM {model._meta.db_table} WHERE id = %s",  # noqa: S608
            [pk],
        )
        return cursor.fetchone()[0]


def _set_raw(model, pk: int, column: str, value: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {model._meta.db_table} SET {column} = %s WHERE id = %s",  # noqa: S608
            [value, pk],
        )


def test_the_compliance_and_bot_migrations_encrypt_existing_rows(customer):
    from bot.models import BotDecision
    from compliance.models import ConsentRecord, DataSubjectRequest
    from compliance.services import consent_grant, dsr_open
    from conversations.tests.factories import MessageFactory

    request = dsr_open(kind="access", customer=customer, details="Pedido da Joaquina")
    consent = consent_grant(customer=customer, purpose="marketing", channel="whatsapp",
                            proof={"wamid": "wamid.X"})  # fmt: skip
    message = MessageFactory(conversation__customer=customer, type="audio", text="")
    decision = BotDecision.objects.create(
        message=message, conversation=message.conversation, action="escalated", rule="audio",
        engine="rules", transcript="áudio: sou a Joaquina",
    )  # fmt: skip
    # As before the release: plaintext in the columns.
    _set_raw(DataSubjectRequest, request.pk, "details", "Pedido da Joaquina")
    _set_raw(ConsentRecord, consent.pk, "proof", '{"wamid": "wamid.X"}')
    _set_raw(BotDecision, decision.pk, "transcript", "áudio: sou a Joaquina")

    for app_label, name in (
        ("compliance", "0004_encrypt_personal_data"),
        ("bot", "0004_encrypt_transcript"),
    ):
        migration, historical = _state_before_data_step(app_label, name)
        migration.encrypt_rows(historical, None)
        migration.encrypt_rows(historical, None)  # idempotent

    for model, pk, column in (
        (DataSubjectRequest, request.pk, "details"),
        (ConsentRecord, consent.pk, "proof"),
        (BotDecision, decision.pk, "transcript"),
    ):
        raw = _raw(model, pk, column)
        assert raw.startswith(crypto.TOKEN_PREFIX) and "Joaquina" not in raw
    assert DataSubjectRequest.objects.get(pk=request.pk).details == "Pedido da Joaquina"
    assert ConsentRecord.objects.get(pk=consent.pk).proof == {"wamid": "wamid.X"}
    assert BotDecision.objects.get(pk=decision.pk).transcript == "áudio: sou a Joaquina"

"""Encrypt customers' personal data at rest and look customers up through blind indexes.

1. The personal columns become plain ``text`` (a token is longer than a phone number) and lose
   their uniqueness: an encrypted value is randomised, so uniqueness moves to the indexes.
2. The blind-index columns are added (empty, not yet unique).
3. Every existing row is encrypted in place and its indexes filled, in batches
   (``ispsupport.crypto.migrate_columns``; idempotent). Backwards, rows are decrypted.
4. The fields become encrypted fields (no schema change: still ``text``) and the identity
   indexes unique — the rule the plaintext columns held (one customer per wa_id, BSUID and
   canonical phone). ``customer_has_an_identity`` keeps working: NULL stays NULL.
5. The change logs (django-auditlog's and the admin's) stored each customer's name as
   ``object_repr``; existing entries are renamed "cliente #<id>", as new ones are
   (``ispsupport.security.hide_personal_object_repr``).
"""

from django.db import migrations, models
from django.db.models import F, Value
from django.db.models.functions import Concat

import ispsupport.crypto

PLAIN_TEXT = {
    "customer": ["wa_id", "bsuid", "parent_bsuid", "username", "phone_e164", "name", "cpf", "metadata"],
    "message": ["text", "payload", "error_details", "media_filename"],
    "conversation": ["resolution_note"],
    "conversationnote": ["text"],
}


def _run(apps, encrypt: bool) -> None:
    for model_name, fields in PLAIN_TEXT.items():
        model = apps.get_model("conversations", model_name)
        ispsupport.crypto.migrate_columns(model, fields, encrypt=encrypt)


def encrypt_rows(apps, schema_editor) -> None:
    _run(apps, encrypt=True)


def decrypt_rows(apps, schema_editor) -> None:
    _run(apps, encrypt=False)


def name_customers_by_id_in_change_logs(apps, schema_editor) -> None:
    content_type = (
        apps.get_model("contenttypes", "ContentType")
        .objects.filter(app_label="conversations", model="customer")
        .first()
    )
    if content_type is None:
        return
    apps.get_model("auditlog", "LogEntry").objects.filter(content_type=content_type).update(
        object_repr=Concat(Value("cliente #"), F("object_pk"))
    )
    apps.get_model("admin", "LogEntry").objects.filter(content_type=content_type).update(
        object_repr=Concat(Value("cliente #"), F("object_id"))
    )


class Migration(migrations.Migration):
    dependencies = [
        ("conversations", "0004_csat_and_dashboard"),
        ("admin", "0003_logentry_add_action_flag_choices"),
        ("auditlog", "0017_add_actor_email"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        # 1. Plain, wide, not unique.
        migrations.AlterField(
            model_name="customer",
            name="wa_id",
            field=models.TextField(blank=True, max_length=32, null=True, verbose_name="WhatsApp id"),
        ),
        migrations.AlterField(
            model_name="customer",
            name="bsuid",
            field=models.TextField(
                blank=True, max_length=128, null=True, verbose_name="id do usuário (BSUID)"
            ),
        ),
        migrations.AlterField(
            model_name="customer",
            name="parent_bsuid",
            field=models.TextField(blank=True, max_length=128),
        ),
        migrations.AlterField(
            model_name="customer",
            name="username",
            field=models.TextField(blank=True, max_length=100, verbose_name="nome de usuário"),
        ),
        migrations.AlterField(
            model_name="customer",
            name="phone_e164",
            field=models.TextField(
                blank=True, max_length=20, null=True, verbose_name="telefone (E.164)"
            ),
        ),
        migrations.AlterField(
            model_name="customer",
            name="name",
            field=models.TextField(blank=True, max_length=200, verbose_name="nome"),
        ),
        migrations.AlterField(
            model_name="customer",
            name="cpf",
            field=models.TextField(blank=True, max_length=11, verbose_name="CPF"),
        ),
        migrations.AlterField(
            model_name="customer",
            name="metadata",
            field=models.TextField(blank=True, default="{}", verbose_name="metadados"),
        ),
        migrations.AlterField(
            model_name="message",
            name="payload",
            field=models.TextField(blank=True, default="{}", verbose_name="conteúdo bruto"),
        ),
        migrations.AlterField(
            model_name="message",
            name="media_filename",
            field=models.TextField(blank=True, max_length=255),
        ),
        # 2. The blind indexes, empty for now.
        migrations.AddField(
            model_name="customer",
            name="wa_id_bidx",
            field=ispsupport.crypto.BlindIndexField(purpose="customer.wa_id", source="wa_id"),
        ),
        migrations.AddField(
            model_name="customer",
            name="bsuid_bidx",
            field=ispsupport.crypto.BlindIndexField(purpose="customer.bsuid", source="bsuid"),
        ),
        migrations.AddField(
            model_name="customer",
            name="phone_bidx",
            field=ispsupport.crypto.BlindIndexField(purpose="customer.phone", source="phone_e164"),
        ),
        migrations.AddField(
            model_name="customer",
            name="cpf_bidx",
            field=ispsupport.crypto.BlindIndexField(
                db_index=True, purpose="customer.cpf", source="cpf"
            ),
        ),
        migrations.AddField(
            model_name="customer",
            name="name_bidx",
            field=ispsupport.crypto.WordBlindIndexField(purpose="customer.name_word", source="name"),
        ),
        # 3. Encrypt what is there and fill the indexes.
        migrations.RunPython(encrypt_rows, decrypt_rows),
        # 4. Encrypted fields; identity indexes unique.
        migrations.AlterField(
            model_name="customer",
            name="wa_id",
            field=ispsupport.crypto.EncryptedTextField(
                blank=True, max_length=32, null=True, verbose_name="WhatsApp id"
            ),
        ),
        migrations.AlterField(
            model_name="customer",
            name="bsuid",
            field=ispsupport.crypto.EncryptedTextField(
                blank=True, max_length=128, null=True, verbose_name="id do usuário (BSUID)"
            ),
        ),
        migrations.AlterField(
            model_name="customer",
            name="parent_bsuid",
            field=ispsupport.crypto.EncryptedTextField(blank=True, max_length=128),
        ),
        migrations.AlterField(
            model_name="customer",
            name="username",
            field=ispsupport.crypto.EncryptedTextField(
                blank=True, max_length=100, verbose_name="nome de usuário"
            ),
        ),
        migrations.AlterField(
            model_name="customer",
            name="phone_e164",
            field=ispsupport.crypto.EncryptedTextField(
                blank=True, max_length=20, null=True, verbose_name="telefone (E.164)"
            ),
        ),
        migrations.AlterField(
            model_name="customer",
            name="name",
            field=ispsupport.crypto.EncryptedTextField(
                blank=True, max_length=200, verbose_name="nome"
            ),
        ),
        migrations.AlterField(
            model_name="customer",
            name="cpf",
            field=ispsupport.crypto.EncryptedTextField(blank=True, max_length=11, verbose_name="CPF"),
        ),
        migrations.AlterField(
            model_name="customer",
            name="metadata",
            field=ispsupport.crypto.EncryptedJSONField(
                blank=True, default=dict, verbose_name="metadados"
            ),
        ),
        migrations.AlterField(
            model_name="customer",
            name="wa_id_bidx",
            field=ispsupport.crypto.BlindIndexField(
                purpose="customer.wa_id", source="wa_id", unique=True
            ),
        ),
        migrations.AlterField(
            model_name="customer",
            name="bsuid_bidx",
            field=ispsupport.crypto.BlindIndexField(
                purpose="customer.bsuid", source="bsuid", unique=True
            ),
        ),
        migrations.AlterField(
            model_name="customer",
            name="phone_bidx",
            field=ispsupport.crypto.BlindIndexField(
                purpose="customer.phone", source="phone_e164", unique=True
            ),
        ),
        migrations.AlterField(
            model_name="message",
            name="text",
            field=ispsupport.crypto.EncryptedTextField(blank=True, verbose_name="texto"),
        ),
        migrations.AlterField(
            model_name="message",
            name="payload",
            field=ispsupport.crypto.EncryptedJSONField(
                blank=True, default=dict, verbose_name="conteúdo bruto"
            ),
        ),
        migrations.AlterField(
            model_name="message",
            name="error_details",
            field=ispsupport.crypto.EncryptedTextField(blank=True, verbose_name="detalhes do erro"),
        ),
        migrations.AlterField(
            model_name="message",
            name="media_filename",
            field=ispsupport.crypto.EncryptedTextField(blank=True, max_length=255),
        ),
        migrations.AlterField(
            model_name="conversation",
            name="resolution_note",
            field=ispsupport.crypto.EncryptedTextField(
                blank=True, verbose_name="nota de encerramento"
            ),
        ),
        migrations.AlterField(
            model_name="conversationnote",
            name="text",
            field=ispsupport.crypto.EncryptedTextField(verbose_name="nota"),
        ),
        # 5. Change logs name customers by id.
        migrations.RunPython(name_customers_by_id_in_change_logs, migrations.RunPython.noop),
    ]

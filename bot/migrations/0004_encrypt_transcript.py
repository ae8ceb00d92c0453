"""Encrypt BotDecision.transcript (a voice note's transcription) at rest, as whatsapp/0002
did: existing rows are encrypted in batches (idempotent; backwards decrypted), then the field
becomes an encrypted field (no schema change: the column is already text)."""

from django.db import migrations

import ispsupport.crypto


def encrypt_rows(apps, schema_editor) -> None:
    model = apps.get_model("bot", "BotDecision")
    ispsupport.crypto.migrate_columns(model, ["transcript"], encrypt=True)


def decrypt_rows(apps, schema_editor) -> None:
    model = apps.get_model("bot", "BotDecision")
    ispsupport.crypto.migrate_columns(model, ["transcript"], encrypt=False)


class Migration(migrations.Migration):
    dependencies = [("bot", "0003_self_service_actions_and_reasons")]

    operations = [
        migrations.RunPython(encrypt_rows, decrypt_rows),
        migrations.AlterField(
            model_name="botdecision",
            name="transcript",
            field=ispsupport.crypto.EncryptedTextField(
                blank=True, verbose_name="transcrição do áudio"
            ),
        ),
    ]

"""Encrypt EarlyStatus.error_details at rest, as Message.error_details already is (Meta's
details can echo the message or the number). Existing rows are encrypted while the field is
still a plain TextField; reversible (decrypts back)."""

from django.db import migrations

import ispsupport.crypto


def encrypt_details(apps, schema_editor) -> None:
    ispsupport.crypto.migrate_columns(
        apps.get_model("whatsapp", "EarlyStatus"), ["error_details"], encrypt=True
    )


def decrypt_details(apps, schema_editor) -> None:
    ispsupport.crypto.migrate_columns(
        apps.get_model("whatsapp", "EarlyStatus"), ["error_details"], encrypt=False
    )


class Migration(migrations.Migration):
    dependencies = [("whatsapp", "0003_template_sync")]

    operations = [
        migrations.RunPython(encrypt_details, decrypt_details),
        migrations.AlterField(
            model_name="earlystatus",
            name="error_details",
            field=ispsupport.crypto.EncryptedTextField(blank=True),
        ),
    ]

"""Encrypt WebhookEvent.body at rest (ispsupport.crypto.EncryptedTextField).

Existing rows are encrypted in place while the field is still a plain TextField in the
migration state, then the field becomes encrypted (no schema change: the column stays text).
Reversible: decrypts back to plaintext.
"""

from django.db import migrations

import ispsupport.crypto

BATCH = 500


def _convert(apps, transform, wants_encrypted: bool) -> None:
    WebhookEvent = apps.get_model("whatsapp", "WebhookEvent")
    last_pk = 0
    while True:
        rows = list(
            WebhookEvent.objects.filter(pk__gt=last_pk).order_by("pk").only("pk", "body")[:BATCH]
        )
        if not rows:
            return
        changed = []
        for row in rows:
            body = row.body or ""
            if body and ispsupport.crypto.looks_encrypted(body) != wants_encrypted:
                row.body = transform(body)
                changed.append(row)
        if changed:
            WebhookEvent.objects.bulk_update(changed, ["body"])
        last_pk = rows[-1].pk


def encrypt_bodies(apps, schema_editor) -> None:
    _convert(apps, ispsupport.crypto.encrypt_str, wants_encrypted=True)


def decrypt_bodies(apps, schema_editor) -> None:
    _convert(apps, ispsupport.crypto.decrypt_str, wants_encrypted=False)


class Migration(migrations.Migration):
    dependencies = [("whatsapp", "0001_initial")]

    operations = [
        migrations.RunPython(encrypt_bodies, decrypt_bodies),
        migrations.AlterField(
            model_name="webhookevent",
            name="body",
            field=ispsupport.crypto.EncryptedTextField(verbose_name="corpo bruto"),
        ),
    ]

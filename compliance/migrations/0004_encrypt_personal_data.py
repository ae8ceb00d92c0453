"""Encrypt compliance's personal free text at rest (ispsupport.crypto), as whatsapp/0002 did:
the columns become plain ``text``, existing rows are encrypted in batches (idempotent;
backwards they are decrypted), then the fields become encrypted fields (no schema change).

``AccessLogEntry`` (staff username and IP, hash-chained and append-only) and
``ServiceRecordHold.subject_digest`` (already a keyed HMAC) stay as they are. Change-log
entries that named a legal hold by its reason are renamed "retenção legal #<id>".
"""

from django.db import migrations, models
from django.db.models import F, Value
from django.db.models.functions import Concat

import ispsupport.crypto

FIELDS = {
    "datasubjectrequest": [
        "answer_address",
        "representative_name",
        "details",
        "identity_note",
        "answer_text",
    ],
    "consentrecord": ["proof"],
    "legalhold": ["reason"],
    "servicerecordhold": ["synthesis"],
    "incident": [
        "description",
        "data_nature",
        "risks",
        "delay_reasons",
        "reason_not_notified",
        "communication_note",
    ],
}


def _run(apps, encrypt: bool) -> None:
    for model_name, fields in FIELDS.items():
        model = apps.get_model("compliance", model_name)
        ispsupport.crypto.migrate_columns(model, fields, encrypt=encrypt)


def encrypt_rows(apps, schema_editor) -> None:
    _run(apps, encrypt=True)


def decrypt_rows(apps, schema_editor) -> None:
    _run(apps, encrypt=False)


def name_holds_by_id_in_change_logs(apps, schema_editor) -> None:
    content_type = (
        apps.get_model("contenttypes", "ContentType")
        .objects.filter(app_label="compliance", model="legalhold")
        .first()
    )
    if content_type is None:
        return
    apps.get_model("auditlog", "LogEntry").objects.filter(content_type=content_type).update(
        object_repr=Concat(Value("retenção legal #"), F("object_pk"))
    )
    apps.get_model("admin", "LogEntry").objects.filter(content_type=content_type).update(
        object_repr=Concat(Value("retenção legal #"), F("object_id"))
    )


class Migration(migrations.Migration):
    dependencies = [
        ("compliance", "0003_dsr_answer_notice"),
        ("admin", "0003_logentry_add_action_flag_choices"),
        ("auditlog", "0017_add_actor_email"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.AlterField(
            model_name="datasubjectrequest",
            name="answer_address",
            field=models.TextField(
                blank=True,
                help_text="E-mail ou endereço postal, quando a resposta não é pelo WhatsApp.",
                max_length=255,
                verbose_name="endereço para a resposta",
            ),
        ),
        migrations.AlterField(
            model_name="datasubjectrequest",
            name="representative_name",
            field=models.TextField(blank=True, max_length=200, verbose_name="nome do representante"),
        ),
        migrations.AlterField(
            model_name="datasubjectrequest",
            name="identity_note",
            field=models.TextField(
                blank=True, max_length=255, verbose_name="observação da verificação"
            ),
        ),
        migrations.AlterField(
            model_name="consentrecord",
            name="proof",
            field=models.TextField(blank=True, default="{}", verbose_name="prova"),
        ),
        migrations.AlterField(
            model_name="legalhold",
            name="reason",
            field=models.TextField(max_length=255, verbose_name="motivo"),
        ),
        migrations.RunPython(encrypt_rows, decrypt_rows),
        migrations.AlterField(
            model_name="datasubjectrequest",
            name="answer_address",
            field=ispsupport.crypto.EncryptedTextField(
                blank=True,
                help_text="E-mail ou endereço postal, quando a resposta não é pelo WhatsApp.",
                max_length=255,
                verbose_name="endereço para a resposta",
            ),
        ),
        migrations.AlterField(
            model_name="datasubjectrequest",
            name="representative_name",
            field=ispsupport.crypto.EncryptedTextField(
                blank=True, max_length=200, verbose_name="nome do representante"
            ),
        ),
        migrations.AlterField(
            model_name="datasubjectrequest",
            name="details",
            field=ispsupport.crypto.EncryptedTextField(
                blank=True,
                help_text="O que o titular pediu, sem copiar dados além do necessário.",
                verbose_name="descrição do pedido",
            ),
        ),
        migrations.AlterField(
            model_name="datasubjectrequest",
            name="identity_note",
            field=ispsupport.crypto.EncryptedTextField(
                blank=True, max_length=255, verbose_name="observação da verificação"
            ),
        ),
        migrations.AlterField(
            model_name="datasubjectrequest",
            name="answer_text",
            field=ispsupport.crypto.EncryptedTextField(blank=True, verbose_name="resposta"),
        ),
        migrations.AlterField(
            model_name="consentrecord",
            name="proof",
            field=ispsupport.crypto.EncryptedJSONField(blank=True, default=dict, verbose_name="prova"),
        ),
        migrations.AlterField(
            model_name="legalhold",
            name="reason",
            field=ispsupport.crypto.EncryptedTextField(max_length=255, verbose_name="motivo"),
        ),
        migrations.AlterField(
            model_name="servicerecordhold",
            name="synthesis",
            field=ispsupport.crypto.EncryptedTextField(
                blank=True, verbose_name="síntese (sem texto de mensagens)"
            ),
        ),
        migrations.AlterField(
            model_name="incident",
            name="description",
            field=ispsupport.crypto.EncryptedTextField(
                verbose_name="descrição e causa principal (XI)"
            ),
        ),
        migrations.AlterField(
            model_name="incident",
            name="data_nature",
            field=ispsupport.crypto.EncryptedTextField(
                verbose_name="natureza e categoria dos dados afetados (I)"
            ),
        ),
        migrations.AlterField(
            model_name="incident",
            name="risks",
            field=ispsupport.crypto.EncryptedTextField(
                blank=True, verbose_name="riscos e impactos aos titulares (IV)"
            ),
        ),
        migrations.AlterField(
            model_name="incident",
            name="delay_reasons",
            field=ispsupport.crypto.EncryptedTextField(
                blank=True, verbose_name="motivos da demora (V)"
            ),
        ),
        migrations.AlterField(
            model_name="incident",
            name="reason_not_notified",
            field=ispsupport.crypto.EncryptedTextField(
                blank=True, verbose_name="motivo para não comunicar"
            ),
        ),
        migrations.AlterField(
            model_name="incident",
            name="communication_note",
            field=ispsupport.crypto.EncryptedTextField(
                blank=True, verbose_name="forma e conteúdo da comunicação"
            ),
        ),
        migrations.RunPython(name_holds_by_id_in_change_logs, migrations.RunPython.noop),
    ]

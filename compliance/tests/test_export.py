"""The access/portability export: a ZIP with dados.json (machine-readable) and resumo.html
(pt-BR), media files; the link expires; every download is logged."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.utils import timezone

from compliance.models import AccessLogEntry, DataExport
from compliance.services import access_log_record, consent_grant, dsr_detect_and_open, export_create
from conversations import services as conv_services
from conversations.tests.factories import ConversationFactory, MessageFactory
from ispsupport import filecrypt

pytestmark = pytest.mark.django_db


@pytest.fixture
def subject(customer, agent, media_root):
    conversation = ConversationFactory(customer=customer)
    MessageFactory(conversation=conversation, text="Minha internet está lenta à noite")
    photo = MessageFactory(conversation=conversation, type="image", text="")
    photo.media_file.save("roteador.jpg", ContentFile(b"JPEGDATA"), save=True)
    conv_services.note_add(conversation=conversation, author=agent, text="Cliente paciente")
    consent_grant(customer=customer, purpose="marketing", channel="whatsapp")
    access_log_record(user=agent, customer_id=customer.pk, action="view_conversation")
    return customer


def _export(customer, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        request = dsr_detect_and_open(customer, "Quero uma cópia dos meus dados")
        export = export_create(request=request, actor=None, ip="10.0.0.1")
    export.refresh_from_db()
    return export


def test_export_zip_holds_json_and_a_pt_br_summary(subject, django_capture_on_commit_callbacks):
    export = _export(subject, django_capture_on_commit_callbacks)
    assert export.status == DataExport.Status.READY and export.progress == 100
    assert export.expires_at > timezone.now()

    with export.file.open("rb") as fh, zipfile.ZipFile(io.BytesIO(fh.read())) as zf:
        names = zf.namelist()
        payload = json.loads(zf.read("dados.json"))
        html = zf.read("resumo.html").decode()
        media = [n for n in names if n.startswith("midias/")]
        assert zf.read(media[0]) == b"JPEGDATA"

    data = payload["data"]
    for key in (
        "customer",
        "conversations",
        "messages",
        "media_files",
        "notes",
        "bot_decisions",
        "consents",
        "requests",
        "access_log",
    ):
        assert key in data, key
    assert data["customer"]["name"] == "Ana Souza"
    assert any(m["text"] == "Minha internet está lenta à noite" for m in data["messages"])
    assert data["notes"][0]["text"] == "Cliente paciente"
    assert data["consents"][0]["purpose"] == "marketing"
    assert len(data["access_log"]) >= 1
    assert payload["controller"]["dpo_email"]
    assert '<html lang="pt-BR">' in html
    assert "Seus dados pessoais" in html and "Mensagens" in html
    assert "Minha internet está lenta à noite" in html


def test_download_link_works_logs_and_expires(
    client, subject, media_root, django_capture_on_commit_callbacks
):
    export = _export(subject, django_capture_on_commit_callbacks)
    url = f"/privacidade/exportacoes/{export.token}/"
    # At rest the ZIP (everything about the subject) is encrypted; the download is the ZIP.
    on_disk = (media_root / export.file.name).read_bytes()
    assert on_disk.startswith(filecrypt.MAGIC) and not on_disk.startswith(b"PK")

    response = client.get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    body = b"".join(response.streaming_content)
    assert response["Content-Length"] == str(len(body)) == str(export.size)
    with zipfile.ZipFile(io.BytesIO(body)) as zf:
        assert "dados.json" in zf.namelist()
    assert (
        AccessLogEntry.objects.filter(action="export_download", customer_id=subject.pk).count() == 1
    )
    export.refresh_from_db()
    assert export.download_count == 1

    DataExport.objects.filter(pk=export.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert client.get(url).status_code == 404
    assert client.get("/privacidade/exportacoes/not-a-token/").status_code == 404
    assert AccessLogEntry.objects.filter(action="export_download").count() == 1


def test_export_requires_a_verified_identity(customer, dpo):
    from compliance.services import RequestError, dsr_open

    request = dsr_open(
        kind="access",
        customer=customer,
        intake_channel="email",
        answer_address="a@b.test",
        created_by=dpo,
    )
    assert request.status == "identity_pending"
    with pytest.raises(RequestError):
        export_create(request=request, actor=dpo)

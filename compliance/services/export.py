"""Access/portability export (LGPD Art. 18 II and V, Art. 19 §3): a ZIP with a machine-readable
JSON of everything the registry knows about the subject, their files, and a pt-BR summary."""

from __future__ import annotations

import json
import logging
import os
import secrets
import tempfile
import zipfile
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from compliance import registry
from compliance.models import AccessLogEntry, DataExport, DataSubjectRequest
from compliance.services.access_log import access_log_record
from compliance.services.dsr import RequestError

logger = logging.getLogger(__name__)
EXPORT_FORMAT = "ispsupport-lgpd-export/1"


def export_payload(customer: Any, *, now: datetime | None = None) -> dict[str, Any]:
    """The export's JSON document: controller, then each provider's keys under ``data``."""
    data: dict[str, Any] = {}
    for provider in registry.providers():
        for key, value in provider.export(customer).items():
            if key in data and isinstance(data[key], list) and isinstance(value, list):
                data[key].extend(value)
            else:
                data[key] = value
    return {
        "format": EXPORT_FORMAT,
        "generated_at": (now or timezone.now()).isoformat(),
        "controller": {
            "name": settings.ISP_NAME,
            "dpo_name": settings.DPO_NAME,
            "dpo_email": settings.DPO_EMAIL,
            "privacy_policy_url": settings.PRIVACY_POLICY_URL,
        },
        "sources": [
            {
                "key": p.key,
                "label": str(p.label),
                "purpose": str(p.purpose),
                "legal_basis": [str(registry.LEGAL_BASIS_LABELS[b]) for b in p.legal_basis],
            }
            for p in registry.providers()
        ],
        "data": data,
    }


def export_create(*, request: DataSubjectRequest, actor: Any, ip: str | None = None) -> DataExport:
    """Queue the export of a request's subject (access or portability, identity verified)."""
    if request.kind not in (
        DataSubjectRequest.Kind.ACCESS,
        DataSubjectRequest.Kind.PORTABILITY,
        DataSubjectRequest.Kind.CONFIRMATION,
    ):
        raise RequestError(_("Só requisições de acesso ou portabilidade geram exportação."))
    if request.customer_id is None:
        raise RequestError(_("A requisição não está ligada a um cliente."))
    if request.identity_verified_at is None:
        raise RequestError(_("Registre a verificação de identidade antes de exportar."))
    from compliance import tasks  # entry point module; imported late (it imports services)

    with transaction.atomic():
        export = DataExport.objects.create(
            request=request, token=secrets.token_urlsafe(32), created_by=actor
        )
        access_log_record(
            user=actor,
            customer_id=request.customer_id,
            action=AccessLogEntry.Action.EXPORT_CREATE,
            ip=ip,
            object_type="dataexport",
            object_id=export.pk,
        )
        transaction.on_commit(lambda: tasks.build_export.delay(export.pk))
    return export


def _progress(export: DataExport, value: int) -> None:
    DataExport.objects.filter(pk=export.pk).update(progress=value)


def export_build(*, export_id: int, now: datetime | None = None) -> DataExport:
    """Build the ZIP (idempotent: a ready export is returned as is)."""
    export = DataExport.objects.select_related("request").get(pk=export_id)
    if export.status in (DataExport.Status.READY, DataExport.Status.EXPIRED):
        return export
    DataExport.objects.filter(pk=export.pk).update(status=DataExport.Status.RUNNING, progress=5)
    customer = _customer_of(export.request)
    now = now or timezone.now()
    try:
        payload = export_payload(customer, now=now)
        _progress(export, 40)
        files = [f for p in registry.providers() for f in p.files(customer)]
        with translation.override("pt-br"):
            html = render_to_string(
                "compliance/export_summary.html",
                {"payload": payload, "data": payload["data"], "generated_at": now, "files": files},
            )
        _progress(export, 60)
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "export.zip")
            with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
                zf.writestr(
                    "dados.json",
                    json.dumps(payload, cls=DjangoJSONEncoder, ensure_ascii=False, indent=2),
                )
                zf.writestr("resumo.html", html)
                for arcname, storage_name in files:
                    if storage_name and default_storage.exists(storage_name):
                        with default_storage.open(storage_name, "rb") as fh:
                            zf.writestr(f"midias/{arcname}", fh.read())
            _progress(export, 90)
            with open(path, "rb") as fh:
                name = f"titular-{export.request_id}-{secrets.token_hex(8)}.zip"
                export.file.save(name, File(fh), save=False)
        export.size = export.file.size
        export.status = DataExport.Status.READY
        export.progress = 100
        export.finished_at = timezone.now()
        export.expires_at = export.finished_at + timedelta(
            hours=settings.COMPLIANCE_EXPORT_LINK_HOURS
        )
        export.save(
            update_fields=["file", "size", "status", "progress", "finished_at", "expires_at"]
        )
    except Exception as exc:
        logger.exception("export failed", extra={"export_id": export.pk})
        DataExport.objects.filter(pk=export.pk).update(
            status=DataExport.Status.FAILED, error=type(exc).__name__[:255]
        )
        raise
    return export


def _customer_of(request: DataSubjectRequest) -> Any:
    # The Customer model belongs to conversations; reach it through the relation.
    return type(request).customer.field.related_model.objects.get(pk=request.customer_id)


def export_open_for_download(
    *, token: str, user: Any = None, ip: str | None = None, now: datetime | None = None
) -> DataExport | None:
    """The export behind a download link, or None when unknown or expired; logs the download."""
    export = DataExport.objects.select_related("request").filter(token=token).first()
    if export is None or not export.is_downloadable(now):
        return None
    with transaction.atomic():
        access_log_record(
            user=user,
            customer_id=export.request.customer_id,
            action=AccessLogEntry.Action.EXPORT_DOWNLOAD,
            ip=ip,
            object_type="dataexport",
            object_id=export.pk,
        )
        from django.db.models import F

        DataExport.objects.filter(pk=export.pk).update(download_count=F("download_count") + 1)
    return export


def export_expire(*, now: datetime | None = None) -> int:
    """Delete files of exports whose link expired (they hold everything about a person)."""
    now = now or timezone.now()
    count = 0
    for export in DataExport.objects.filter(
        status=DataExport.Status.READY, expires_at__lt=now
    ).only("pk", "file"):
        if export.file:
            export.file.delete(save=False)
        DataExport.objects.filter(pk=export.pk).update(status=DataExport.Status.EXPIRED, file="")
        count += 1
    return count

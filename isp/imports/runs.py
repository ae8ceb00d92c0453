"""Uploads through the admin (``isp.ContractImport``): queue the file, run it in Celery, keep the
counts and the rejected-rows report, and never keep the file after its import."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from isp.imports.csvfile import ImportFileError
from isp.imports.service import DEFAULT_BATCH_SIZE, contracts_import, import_report_csv
from isp.models import ContractImport

logger = logging.getLogger("isp.imports")

RUN_STALE_AFTER = timedelta(minutes=10)
RUN_FIELDS = [
    "status",
    "file",
    "report",
    "error",
    "total_rows",
    "processed_rows",
    "created_count",
    "updated_count",
    "unchanged_count",
    "rejected_count",
    "started_at",
    "finished_at",
    "heartbeat_at",
]


def contract_import_submit(*, contract_import: ContractImport, user: Any) -> ContractImport:
    """Queue an uploaded CSV: the row is saved with its file (written encrypted by the default
    storage) and ``isp.contract_import_run`` starts after commit. Call with the file already
    checked (``contracts_import_check_header``)."""
    from isp.tasks import contract_import_run as run_task

    contract_import.created_by = user if getattr(user, "is_authenticated", False) else None
    contract_import.status = ContractImport.Status.PENDING
    contract_import.save()
    pk = contract_import.pk
    transaction.on_commit(lambda: run_task.delay(pk))
    logger.info("isp: customer import queued", extra={"import_id": pk})
    return contract_import


def contract_import_run(*, import_id: int) -> ContractImport | None:
    """Run a queued import (the task): import the file, store the rejected-rows report, and
    delete the uploaded file whatever happens. Safe to call twice: a finished run, or one
    another worker is running (a batch within ``RUN_STALE_AFTER``), is left alone."""
    now = timezone.now()
    with transaction.atomic():
        run = ContractImport.objects.select_for_update().filter(pk=import_id).first()
        if run is None or run.status in (ContractImport.Status.DONE, ContractImport.Status.FAILED):
            return run
        beat = run.heartbeat_at
        if run.status == ContractImport.Status.RUNNING and beat and beat > now - RUN_STALE_AFTER:
            return run
        run.status = ContractImport.Status.RUNNING
        run.started_at = run.heartbeat_at = now
        run.processed_rows = 0
        run.save(update_fields=["status", "started_at", "heartbeat_at", "processed_rows"])

    def progress(done: int, total: int) -> None:
        ContractImport.objects.filter(pk=run.pk).update(
            processed_rows=done, total_rows=total, heartbeat_at=timezone.now()
        )

    try:
        if not run.file:
            raise ImportFileError(_("O arquivo enviado não está mais disponível: envie-o de novo."))
        result = contracts_import(
            open_file=lambda: run.file.storage.open(run.file.name, "rb"),
            dry_run=run.dry_run,
            batch_size=int(getattr(settings, "CONTRACT_IMPORT_BATCH_SIZE", DEFAULT_BATCH_SIZE)),
            progress=progress,
        )
    except ImportFileError as exc:
        run.status, run.error = ContractImport.Status.FAILED, exc.message
    except Exception:
        logger.exception("isp: customer import failed", extra={"import_id": run.pk})
        run.status = ContractImport.Status.FAILED
        run.error = _("Erro inesperado durante a importação; os lotes já gravados ficam.")
    else:
        run.status = ContractImport.Status.DONE
        run.total_rows = run.processed_rows = result.total
        run.created_count, run.updated_count = result.created, result.updated
        run.unchanged_count, run.rejected_count = result.unchanged, result.rejected
        run.report.save(
            f"rejeitadas-{run.pk}.csv", ContentFile(import_report_csv(result)), save=False
        )
    finally:
        if run.file:
            run.file.storage.delete(run.file.name)  # personal data: never kept after the import
            run.file = ""
        run.finished_at = timezone.now()
        run.save(update_fields=RUN_FIELDS)
    logger.info("isp: customer import finished", extra={"import_id": run.pk, "status": run.status})
    return run

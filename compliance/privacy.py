"""Compliance's own personal data (requests, exports, consent, the access log, legal holds,
incidents) and the change logs of Django admin and django-auditlog, which copy other apps'
values (``object_repr`` is a customer's name, ``changes`` their old phone)."""

from __future__ import annotations

from typing import Any

from django.contrib.admin.models import LogEntry as AdminLogEntry
from django.contrib.contenttypes.models import ContentType
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from compliance.models import (
    AccessLogEntry,
    ConsentRecord,
    DataExport,
    DataSubjectRequest,
    Incident,
    ServiceRecordHold,
)
from compliance.registry import Category, ErasureReport, LegalBasis, Provider, Retention
from compliance.services import held_customer_ids
from compliance.services.access_log import access_log_purge_before
from compliance.services.export import export_expire
from compliance.services.retention import batched_delete, retention_cutoff

ERASED = "[eliminado a pedido do titular]"


class ComplianceProvider(Provider):
    key = "compliance"
    label = _("Requisições de titulares, consentimentos e registro de acessos")
    purpose = _(
        "Atender direitos dos titulares, provar consentimentos (art. 8º §2º) e registrar quem "
        "acessou dados pessoais (art. 37 e 46; Decreto 8.771 art. 13)"
    )
    fields = {
        "compliance.datasubjectrequest": {
            "answer_address": Category.CONTACT,
            "representative_name": Category.IDENTIFICATION,
            "details": Category.CONTENT,
            "identity_note": Category.CONTENT,
            "answer_text": Category.CONTENT,
        },
        "compliance.dataexport": {"file": Category.CONTENT},
        "compliance.consentrecord": {"proof": Category.CONTENT},
        "compliance.accesslogentry": {
            "username": Category.STAFF,
            "ip": Category.TECHNICAL,
        },
        "compliance.legalhold": {"reason": Category.CONTENT},
        "compliance.servicerecordhold": {
            "synthesis": Category.CONTENT,
            "subject_digest": Category.IDENTIFICATION,
        },
        "compliance.incident": {
            "description": Category.CONTENT,
            "data_nature": Category.CONTENT,
            "risks": Category.CONTENT,
            "delay_reasons": Category.CONTENT,
            "reason_not_notified": Category.CONTENT,
            "communication_note": Category.CONTENT,
        },
    }
    exempt = {
        "compliance.datasubjectrequest": {
            "retained_legal_basis": "Texto padrão do fundamento legal, sem dados pessoais.",
            "answer_channel": "Escolha entre canais (whatsapp, e-mail, impresso).",
            "erasure_report": "Só contagens por tipo de dado (ErasureReport), sem dados pessoais.",
            "third_parties": "Nomes dos operadores e destinatários (Meta, Google, ERP).",
        },
        "compliance.consentrecord": {"text_version": "Versão do texto apresentado."},
        "compliance.requestevent": {"note": "Códigos de situação, sem dados pessoais."},
        "compliance.legalhold": {"legal_basis": "Artigo de lei."},
        "compliance.servicerecordhold": {
            "legal_basis": "Artigo de lei.",
        },
        "compliance.incident": {
            "subjects_total_in_activity": "Número, não dado pessoal.",
            "measures_before": "Medidas técnicas descritas pela equipe; os dados e titulares "
            "afetados ficam nos campos cifrados (data_nature, description, risks).",
            "measures_after": "Medidas técnicas descritas pela equipe (ver measures_before).",
            "mitigation": "Medidas de mitigação descritas pela equipe (ver measures_before).",
        },
        "compliance.retentionrun": {"counts": "Contagens por classe de dado."},
    }
    legal_basis = (LegalBasis.LEGAL_OBLIGATION, LegalBasis.EXERCISE_OF_RIGHTS)
    retention = (
        Retention("requests", _("após o recebimento da requisição"), _("LGPD art. 6º, X")),
        Retention("exports", _("após a geração da exportação (link expira antes)")),
        Retention("access_log", _("após o acesso"), _("Marco Civil art. 15 (mínimo 6 meses)")),
        Retention(
            "service_records",
            _("após a conclusão do atendimento"),
            _("RGC Anatel 765/2023; Decreto 11.034/2022 art. 12 §5º"),
        ),
        Retention("incidents", _("após o registro"), _("Res. CD/ANPD 15/2024 art. 10")),
        Retention(
            "consents",
            _(
                "após ser substituído por um registro mais novo da mesma finalidade, ou após o "
                "último registro de um titular eliminado (prova do consentimento)"
            ),
            _("LGPD art. 8º §2º; CDC art. 27 (prazo prescricional)"),
        ),
    )
    legal_hold = _(
        "Registro da requisição (tipo, datas, situação e contagens, sem conteúdo) e dos "
        "consentimentos (finalidade, versão, data), para prestação de contas (LGPD art. 6º, X; "
        "art. 8º §2º); registro de acessos de colaboradores (Decreto 8.771 art. 13)."
    )
    order = 50

    def count(self, customer: Any) -> dict[str, int]:
        return {
            str(_("Requisições de titular")): DataSubjectRequest.objects.filter(
                customer=customer
            ).count(),
            str(_("Registros de consentimento")): ConsentRecord.objects.filter(
                customer=customer
            ).count(),
        }

    def export(self, customer: Any) -> dict[str, Any]:
        return {
            "consents": [
                {
                    "purpose": c.purpose,
                    "action": c.action,
                    "text_version": c.text_version,
                    "channel": c.channel,
                    "proof": c.proof,
                    "created_at": c.created_at,
                }
                for c in ConsentRecord.objects.filter(customer=customer).order_by("created_at")
            ],
            "requests": [
                {
                    "id": r.pk,
                    "kind": r.kind,
                    "status": r.status,
                    "received_at": r.received_at,
                    "due_at": r.due_at,
                    "answered_at": r.answered_at,
                    "details": r.details,
                    "answer": r.answer_text,
                }
                for r in DataSubjectRequest.objects.filter(customer=customer).order_by("pk")
            ],
            "access_log": [
                {
                    "when": e.created_at,
                    "staff_member": e.username,
                    "action": e.action,
                    "object": f"{e.object_type}:{e.object_id}",
                }
                for e in AccessLogEntry.objects.filter(customer_id=customer.pk).order_by("pk")
            ],
        }

    def object_refs(self, customer: Any):
        for pk in DataSubjectRequest.objects.filter(customer=customer).values_list("pk", flat=True):
            yield ("compliance.datasubjectrequest", str(pk))

    def erase(self, customer: Any, report: ErasureReport, *, request: Any = None) -> None:
        requests = DataSubjectRequest.objects.filter(customer=customer)
        n = requests.update(details="", answer_address="", representative_name="", identity_note="")
        requests.exclude(answer_text="").update(answer_text=ERASED)
        report.add("anonymized", "compliance.datasubjectrequest", n)
        exports = DataExport.objects.filter(request__customer=customer)
        report.files_to_delete.extend(
            name for name in exports.values_list("file", flat=True) if name
        )
        report.add("deleted", "compliance.dataexport", exports.delete()[0])
        consents = ConsentRecord.objects.filter(customer=customer)
        for row in consents.only("pk", "proof"):
            kept = {k: v for k, v in (row.proof or {}).items() if k in ("kind", "request_id")}
            ConsentRecord.objects.filter(pk=row.pk).update(proof=kept)
        report.add("held", "compliance.consentrecord", consents.count())

    def purge(self, *, now: Any, batch_size: int, dry_run: bool) -> dict[str, int]:
        today = timezone.localdate(now)
        counts = {}
        if dry_run:
            counts["exports_expired"] = DataExport.objects.filter(
                status=DataExport.Status.READY, expires_at__lt=now
            ).count()
        else:
            counts["exports_expired"] = export_expire(now=now)
        counts["exports"] = batched_delete(
            DataExport.objects.filter(created_at__lt=retention_cutoff("exports", now)).exclude(
                status=DataExport.Status.READY
            ),
            batch_size=batch_size,
            dry_run=dry_run,
        )
        counts["access_log"] = access_log_purge_before(
            cutoff=retention_cutoff("access_log", now), batch_size=batch_size, dry_run=dry_run
        )
        counts["service_records"] = batched_delete(
            ServiceRecordHold.objects.filter(retain_until__lt=today),
            batch_size=batch_size,
            dry_run=dry_run,
        )
        counts["requests"] = batched_delete(
            DataSubjectRequest.objects.exclude(status__in=DataSubjectRequest.OPEN_STATUSES).filter(
                received_at__lt=retention_cutoff("requests", now)
            ),
            batch_size=batch_size,
            dry_run=dry_run,
        )
        counts["consents"] = batched_delete(
            consents_past_retention(retention_cutoff("consents", now)),
            batch_size=batch_size,
            dry_run=dry_run,
        )
        counts["incidents"] = batched_delete(
            Incident.objects.filter(retain_until__lt=today),
            batch_size=batch_size,
            dry_run=dry_run,
        )
        return counts


class ChangeLogProvider(Provider):
    """Django admin's and django-auditlog's change logs copy values of the logged rows."""

    key = "change_logs"
    label = _("Históricos de alteração (admin e auditoria)")
    purpose = _("Prestação de contas: quem alterou o quê e quando (LGPD art. 6º, X; art. 46)")
    fields = {
        "admin.logentry": {
            "object_repr": Category.IDENTIFICATION,
            "change_message": Category.CONTENT,
        },
        "auditlog.logentry": {
            "object_repr": Category.IDENTIFICATION,
            "serialized_data": Category.CONTENT,
            "changes_text": Category.CONTENT,
            "changes": Category.CONTENT,
            "remote_addr": Category.TECHNICAL,
            "additional_data": Category.CONTENT,
            "actor_email": Category.STAFF,
        },
    }
    legal_basis = (LegalBasis.LEGITIMATE_INTEREST,)
    retention = (Retention("change_logs", _("após a alteração"), _("LGPD art. 6º, X; art. 46")),)
    order = 95  # after every provider listed its rows, before nothing else matters

    def erase(self, customer: Any, report: ErasureReport, *, request: Any = None) -> None:
        refs = getattr(report, "object_refs", [])
        by_model: dict[str, list[str]] = {}
        for label, pk in refs:
            by_model.setdefault(label, []).append(str(pk))
        try:
            from auditlog.models import LogEntry as AuditEntry
        except ImportError:  # pragma: no cover - auditlog is a dependency
            AuditEntry = None
        for label, pks in by_model.items():
            app_label, model = label.split(".")
            ct = ContentType.objects.filter(app_label=app_label, model=model).first()
            if ct is None:
                continue
            n = AdminLogEntry.objects.filter(content_type=ct, object_id__in=pks).update(
                object_repr=ERASED, change_message=""
            )
            report.add("anonymized", "admin.logentry", n)
            if AuditEntry is not None:
                n = AuditEntry.objects.filter(content_type=ct, object_pk__in=pks).update(
                    object_repr=ERASED,
                    changes_text="",
                    changes=None,
                    serialized_data=None,
                    additional_data=None,
                )
                report.add("anonymized", "auditlog.logentry", n)

    def purge(self, *, now: Any, batch_size: int, dry_run: bool) -> dict[str, int]:
        from auditlog.models import LogEntry as AuditEntry

        cutoff = retention_cutoff("change_logs", now)
        return {
            "admin_log": batched_delete(
                AdminLogEntry.objects.filter(action_time__lt=cutoff),
                batch_size=batch_size,
                dry_run=dry_run,
            ),
            "audit_log": batched_delete(
                AuditEntry.objects.filter(timestamp__lt=cutoff),
                batch_size=batch_size,
                dry_run=dry_run,
            ),
        }


def consents_past_retention(cutoff: Any):
    """Consent rows no longer needed as proof: superseded (a newer row of the same customer and
    purpose exists) before ``cutoff``, or of an erased customer and older than ``cutoff``.
    The latest row of a purpose is the consent in force and stays while the customer does;
    customers under legal hold keep everything."""
    superseded = ConsentRecord.objects.filter(
        customer=OuterRef("customer"),
        purpose=OuterRef("purpose"),
        created_at__gt=OuterRef("created_at"),
        created_at__lt=cutoff,
    )
    return ConsentRecord.objects.filter(
        Exists(superseded) | Q(customer__status="anonymized", created_at__lt=cutoff)
    ).exclude(customer_id__in=held_customer_ids())


def register_all() -> None:
    from compliance import registry

    registry.register(ComplianceProvider())
    registry.register(ChangeLogProvider())

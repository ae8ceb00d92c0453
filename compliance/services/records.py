"""Record of processing (LGPD Art. 37) and the Anatel/SAC service record of a protocol."""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from compliance import registry
from compliance.models import AccessLogEntry, ServiceRecordHold
from compliance.services.access_log import access_log_record

# --- Art. 37 -----------------------------------------------------------------------------------

SECURITY_MEASURES = (
    "Controle de acesso por papéis (atendente, supervisor, administrador, encarregado)",
    "Autenticação em dois fatores para papéis com acesso ampliado",
    "Criptografia de campos pessoais em repouso e TLS em trânsito",
    "Registro de acessos a dados pessoais com cadeia de hashes (verify_audit_log)",
    "Mascaramento de dados pessoais antes do envio à IA",
    "Retenção automática por classe de dados (apply_retention)",
)


def processing_record() -> dict[str, Any]:
    """The record of processing operations, generated from the registry and settings."""
    activities = []
    for provider in registry.providers():
        categories = sorted(
            {
                str(registry.CATEGORY_LABELS[c])
                for spec in provider.fields.values()
                for c in spec.values()
            }
        )
        activities.append(
            {
                "key": provider.key,
                "activity": str(provider.label),
                "purpose": str(provider.purpose),
                "models": sorted(provider.fields),
                "fields": {
                    model: {name: str(cat) for name, cat in spec.items()}
                    for model, spec in provider.fields.items()
                },
                "data_categories": categories,
                "legal_basis": [str(registry.LEGAL_BASIS_LABELS[b]) for b in provider.legal_basis],
                "retention": [
                    {
                        "data_class": r.data_class,
                        "days": r.days,
                        "from": str(r.anchor),
                        "law": str(r.law),
                    }
                    for r in provider.retention
                ],
                "legal_hold": str(provider.legal_hold),
                "recipients": [str(r) for r in provider.recipients],
            }
        )
    return {
        "title": "Registro das operações de tratamento de dados pessoais (LGPD art. 37)",
        "generated_at": timezone.now().isoformat(),
        "controller": settings.ISP_NAME,
        "dpo": {
            "name": settings.DPO_NAME,
            "email": settings.DPO_EMAIL,
            # Res. CD/ANPD 18/2024: a formally designated substitute ("" until configured)
            "substitute": {
                "name": settings.DPO_SUBSTITUTE_NAME,
                "email": settings.DPO_SUBSTITUTE_EMAIL,
            },
        },
        "privacy_policy_url": settings.PRIVACY_POLICY_URL,
        "international_transfer": (
            "Google (Gemini API, plano pago) e Meta (WhatsApp Cloud API) podem tratar dados fora "
            "do Brasil (LGPD art. 33; Res. CD/ANPD 19/2024: cláusulas-padrão)."
        ),
        "security_measures": list(SECURITY_MEASURES),
        "activities": activities,
    }


def processing_record_json() -> str:
    return json.dumps(processing_record(), ensure_ascii=False, indent=2)


def processing_record_csv() -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            "atividade",
            "finalidade",
            "categorias de dados",
            "base legal",
            "retenção",
            "retenção legal (art. 16)",
            "compartilhamento",
        ]
    )
    for a in processing_record()["activities"]:
        writer.writerow(
            [
                a["activity"],
                a["purpose"],
                "; ".join(a["data_categories"]),
                "; ".join(a["legal_basis"]),
                "; ".join(f"{r['days']} dias {r['from']} ({r['law']})" for r in a["retention"]),
                a["legal_hold"],
                "; ".join(a["recipients"]),
            ]
        )
    return out.getvalue()


def processing_record_html() -> str:
    with translation.override("pt-br"):
        return render_to_string(
            "compliance/processing_record.html", {"record": processing_record()}
        )


# --- Anatel / SAC service record -----------------------------------------------------------------


def subject_digest(identifier: str | None) -> str:
    """Keyed HMAC of a phone/identifier: matches a later request without storing the number.

    Pseudonymous (not anonymous) data: kept only inside the blocked legal-hold record.
    """
    if not identifier:
        return ""
    key = hashlib.sha256(("service-record:" + settings.SECRET_KEY).encode()).digest()
    return hmac.new(key, identifier.encode(), hashlib.sha256).hexdigest()


def service_record_retain_until(closed_or_opened: datetime) -> date:
    days = settings.COMPLIANCE_RETENTION_DAYS["service_records"]
    return timezone.localtime(closed_or_opened).date() + timedelta(days=days)


SERVICE_RECORD_BASIS = (
    "LGPD art. 7º, II e art. 16, I; RGC Anatel 765/2023 (histórico por 3 anos); "
    "Decreto 11.034/2022 art. 12 §5º"
)


def service_record_hold(
    *,
    protocol: str,
    opened_at: datetime,
    closed_at: datetime | None,
    classification: str,
    synthesis: str,
    response: str,
    subject_identifier: str | None,
    request: Any = None,
) -> ServiceRecordHold:
    """Keep the Anatel/SAC record of one protocol under legal hold (called by providers on
    erasure). ``synthesis`` and ``response`` must be built from structured fields, never from
    message text. Idempotent per protocol."""
    record, _created = ServiceRecordHold.objects.update_or_create(
        protocol=protocol,
        defaults={
            "opened_at": opened_at,
            "closed_at": closed_at,
            "classification": classification[:100],
            "synthesis": synthesis,
            "response": response[:255],
            "legal_basis": SERVICE_RECORD_BASIS,
            "retain_until": service_record_retain_until(closed_at or opened_at),
            "subject_digest": subject_digest(subject_identifier),
            "request": request,
        },
    )
    return record


def service_record_for_protocol(
    protocol: str, *, user: Any = None, ip: str | None = None
) -> dict[str, Any] | None:
    """The service record of a protocol (protocol, timestamps, classification, synthesis,
    response) for the customer's "histórico do protocolo" request or the regulator; None when
    the protocol is unknown.

    Live conversations come from the source conversations registers; erased subjects' records
    from the legal hold (those are blocked: reading one is logged in the access log).
    """
    protocol = (protocol or "").strip()
    if not protocol:
        return None
    source = registry.service_record_source()
    if source is not None:
        live = source(protocol=protocol)
        if live is not None:
            return {**live, "held": False}
    held = ServiceRecordHold.objects.filter(protocol=protocol).first()
    if held is None:
        return None
    access_log_record(
        user=user,
        customer_id=None,
        action=AccessLogEntry.Action.VIEW_SERVICE_RECORD,
        ip=ip,
        object_type="servicerecordhold",
        object_id=held.pk,
    )
    return {
        "protocol": held.protocol,
        "opened_at": held.opened_at,
        "closed_at": held.closed_at,
        "classification": held.classification,
        "synthesis": held.synthesis,
        "response": held.response,
        "held": True,
    }


def protocol_moment(moment: Any) -> str:
    """A protocol's date and time as the customer reads them (RGC 765 art. 9: the protocol is
    sent "com data e hora"): ``04/12/2026 às 18:05`` in Brasília time."""
    local = timezone.localtime(moment)
    return _("%(day)s às %(time)s") % {"day": f"{local:%d/%m/%Y}", "time": f"{local:%H:%M}"}


def service_record_text(record: dict[str, Any]) -> str:
    """The record as a pt-BR WhatsApp message (what the bot sends for "histórico do protocolo")."""

    def fmt(value: Any) -> str:
        return timezone.localtime(value).strftime("%d/%m/%Y %H:%M") if value else "—"

    return _(
        "Histórico do protocolo %(protocol)s\n"
        "Registrado em: %(opened)s\n"
        "Concluído em: %(closed)s\n"
        "Classificação: %(classification)s\n"
        "Síntese: %(synthesis)s\n"
        "Tratamento: %(response)s"
    ) % {
        "protocol": record["protocol"],
        "opened": fmt(record.get("opened_at")),
        "closed": fmt(record.get("closed_at")),
        "classification": record.get("classification") or "—",
        "synthesis": record.get("synthesis") or "—",
        "response": record.get("response") or "—",
    }

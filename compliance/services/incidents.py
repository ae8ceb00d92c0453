"""Security incidents (LGPD Art. 48; Res. CD/ANPD 15/2024): register, deadlines, notice draft."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone, translation

from compliance.models import Incident
from compliance.services.deadlines import incident_complement_due_at, incident_notice_due_at


def incident_fill_deadlines(incident: Incident) -> Incident:
    """Compute the deadlines and the retention date (no save)."""
    incident.anpd_due_at = incident_notice_due_at(incident.discovered_at)
    incident.subjects_due_at = incident.anpd_due_at
    if incident.anpd_notified_at:
        incident.complement_due_at = incident_complement_due_at(incident.anpd_notified_at)
    base = timezone.localtime(incident.created_at or timezone.now()).date()
    incident.retain_until = base + timedelta(days=settings.COMPLIANCE_RETENTION_DAYS["incidents"])
    return incident


def incident_register(*, actor: Any, **fields: Any) -> Incident:
    """Register an incident (every incident, notified or not: Res. 15/2024 art. 10)."""
    with transaction.atomic():
        incident = Incident(created_by=actor, **fields)
        incident_fill_deadlines(incident)
        incident.full_clean()
        incident.save()
    return incident


def incident_notice_draft(incident: Incident) -> str:
    """A pt-BR draft of the ANPD communication with the 12 items of Res. 15/2024, and of the
    notice to the subjects (art. 9), for the DPO to review."""
    with translation.override("pt-br"):
        return render_to_string(
            "compliance/incident_notice.txt",
            {
                "incident": incident,
                "isp_name": settings.ISP_NAME,
                "dpo_name": settings.DPO_NAME,
                "dpo_email": settings.DPO_EMAIL,
                "privacy_policy_url": settings.PRIVACY_POLICY_URL,
            },
        )

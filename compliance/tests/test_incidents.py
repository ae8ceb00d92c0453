"""Incident register: deadlines with holidays, required fields, the notice draft, kept 5 years."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError

from compliance.models import Incident
from compliance.services import incident_notice_draft, incident_register
from compliance.tests.conftest import login_verified

pytestmark = pytest.mark.django_db
SP = ZoneInfo("America/Sao_Paulo")


def _incident(dpo, **extra):
    fields = {
        "title": "Planilha de clientes enviada ao destinatário errado",
        "discovered_at": datetime(2025, 4, 16, 9, 0, tzinfo=SP),
        "description": "Um atendente enviou por e-mail uma exportação a um endereço externo.",
        "data_nature": "Nome, telefone e protocolo de atendimento",
        "subjects_affected": 120,
        "subjects_elderly": 7,
        "subjects_total_in_activity": 5000,
        "risks": "Contato indevido e golpes por telefone.",
        "mitigation": "Pedido de exclusão ao destinatário; bloqueio de exportações por e-mail.",
    }
    fields.update(extra)
    return incident_register(actor=dpo, **fields)


def test_register_computes_the_3_business_day_deadline_and_retention(dpo):
    incident = _incident(dpo)
    assert incident.anpd_due_at.astimezone(SP).date() == date(2025, 4, 23)
    assert incident.subjects_due_at == incident.anpd_due_at
    assert incident.retain_until >= date.today().replace(year=date.today().year + 4)


def test_notice_draft_has_the_twelve_items(dpo, settings):
    settings.DPO_NAME = "Maria Encarregada"
    text = incident_notice_draft(_incident(dpo))
    for item in (
        "I –",
        "II –",
        "III –",
        "IV –",
        "V –",
        "VI –",
        "VII –",
        "VIII –",
        "IX –",
        "X –",
        "XI –",
        "XII –",
    ):
        assert f"\n{item}" in text
    assert "Maria Encarregada" in text and "idosos: 7" in text and "23/04/2025" in text
    assert "AVISO AOS TITULARES" in text


def test_not_notifying_requires_a_reason(dpo):
    with pytest.raises(ValidationError):
        _incident(dpo, risk_assessment=Incident.Risk.NOT_RELEVANT)


def test_dpo_registers_in_admin_and_cannot_delete(client, dpo):
    incident = _incident(dpo)
    login_verified(client, dpo)
    assert client.get("/admin/compliance/incident/").status_code == 200
    response = client.get(f"/admin/compliance/incident/{incident.pk}/comunicacao/")
    assert response.status_code == 200 and "ANPD" in response.content.decode()
    assert (
        client.post(
            f"/admin/compliance/incident/{incident.pk}/delete/", {"post": "yes"}
        ).status_code
        == 403
    )
    assert Incident.objects.filter(pk=incident.pk).exists()

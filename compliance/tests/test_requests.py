"""Data-subject requests: WhatsApp intake, immediate confirmation, the 15-day clock, alerts,
the DPO's admin list and the Art. 37 record download."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command  # noqa: F401
from django.utils import timezone

from compliance.models import DataSubjectRequest, RequestEvent
from compliance.services import (
    dsr_deadline_alerts,
    dsr_detect_and_open,
    dsr_detect_kind,
    dsr_intake_reply,
    dsr_open,
)
from compliance.tasks import check_request_deadlines
from compliance.tests.conftest import login_verified
from conversations.models import Message
from conversations.tests.factories import ConversationFactory

pytestmark = pytest.mark.django_db
Kind = DataSubjectRequest.Kind


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("Quero meus dados", Kind.ACCESS),
        ("quero uma cópia dos meus dados pessoais", Kind.ACCESS),
        ("Apagar meus dados", Kind.ERASURE),
        ("quero EXCLUIR meus dados!", Kind.ERASURE),
        ("Quais dados vocês têm sobre mim?", Kind.CONFIRMATION),
        ("revogar consentimento", Kind.CONSENT_REVOCATION),
        ("quero corrigir meus dados", Kind.CORRECTION),
        ("com quem vocês compartilham meus dados?", Kind.SHARING_INFO),
        ("portabilidade dos meus dados", Kind.PORTABILITY),
        ("minha internet caiu", None),
        ("quero meu boleto", None),
        ("meus dados móveis acabaram", None),
    ],
)
def test_detects_the_right_from_the_message(text, kind):
    assert dsr_detect_kind(text) == kind


def test_whatsapp_request_opens_once_with_a_15_day_clock(customer):
    first = dsr_detect_and_open(customer, "quero meus dados")
    again = dsr_detect_and_open(customer, "QUERO MEUS DADOS")
    assert first.pk == again.pk
    assert first.status == DataSubjectRequest.Status.IN_PROGRESS  # own number = verified
    assert first.identity_method == DataSubjectRequest.IdentityMethod.WHATSAPP_NUMBER
    assert (first.due_at - first.received_at) >= timedelta(days=15)
    assert (first.due_at - first.received_at) < timedelta(days=16)
    assert RequestEvent.objects.filter(request=first).exists()
    assert "nº" in dsr_intake_reply(first)
    assert dsr_detect_and_open(customer, "oi, tudo bem?") is None


def test_confirmation_is_answered_immediately_on_whatsapp(customer):
    conversation = ConversationFactory(customer=customer)
    request = dsr_detect_and_open(customer, "Quais dados vocês têm de mim?")
    assert request.status == DataSubjectRequest.Status.ANSWERED
    assert request.answer_delivered is True
    reply = Message.objects.get(conversation=conversation, direction="out")
    assert reply.status == Message.Status.PENDING or reply.status
    assert "Conversas" in reply.text and request.answer_text == reply.text


def test_consent_revocation_request_revokes_at_once(customer):
    from compliance.services import consent_grant, marketing_allowed

    consent_grant(customer=customer, purpose="marketing", channel="whatsapp")
    request = dsr_detect_and_open(customer, "quero revogar o consentimento")
    assert request.status == DataSubjectRequest.Status.ANSWERED
    assert not marketing_allowed(customer=customer)


def test_deadline_alerts_flag_overdue_and_near_due(customer, dpo):
    now = timezone.now()
    overdue = dsr_open(
        kind="access",
        customer=customer,
        intake_channel="whatsapp",
        received_at=now - timedelta(days=20),
    )
    near = dsr_open(
        kind="correction",
        customer=customer,
        intake_channel="whatsapp",
        received_at=now - timedelta(days=13),
    )
    fine = dsr_open(
        kind="portability", customer=customer, intake_channel="whatsapp", received_at=now
    )

    result = check_request_deadlines.delay().get()

    assert result == {"overdue": [overdue.pk], "near_due": [near.pk]}
    overdue.refresh_from_db()
    fine.refresh_from_db()
    assert overdue.alerted_at is not None and fine.alerted_at is None
    assert dsr_deadline_alerts(now=now + timedelta(days=30))["overdue"] == sorted(
        [overdue.pk, near.pk, fine.pk]
    )


def test_dpo_sees_the_queue_with_deadline_filters(client, dpo, customer):
    now = timezone.now()
    overdue = dsr_open(
        kind="access",
        customer=customer,
        intake_channel="whatsapp",
        received_at=now - timedelta(days=20),
    )
    login_verified(client, dpo)

    response = client.get("/admin/compliance/datasubjectrequest/?prazo=overdue")
    assert response.status_code == 200
    assert [r.pk for r in response.context["cl"].result_list] == [overdue.pk]
    assert response.context["dsr_summary"]["overdue"] == 1
    assert "VENCIDA" in response.content.decode()


def test_agent_cannot_open_the_requests(client, agent):
    login_verified(client, agent)
    assert client.get("/admin/compliance/datasubjectrequest/").status_code in (302, 403)


@pytest.mark.parametrize("fmt", ["html", "csv", "json"])
def test_dpo_downloads_the_record_of_processing(client, dpo, fmt, settings):
    settings.DPO_NAME = "Maria Encarregada"
    settings.DPO_SUBSTITUTE_NAME = "João Substituto"
    login_verified(client, dpo)
    response = client.get(f"/admin/compliance/datasubjectrequest/registro-de-tratamento.{fmt}")
    assert response.status_code == 200
    body = response.content.decode()
    assert "Conversas, mensagens e mídias do atendimento" in body
    if fmt != "csv":
        assert "Maria Encarregada" in body
        assert "João Substituto" in body  # Res. CD/ANPD 18/2024
    if fmt == "json":
        import json

        record = json.loads(body)
        keys = {a["key"] for a in record["activities"]}
        assert {"conversations.conversations", "bot.decisions", "whatsapp.webhook_events"} <= keys


def test_admin_intake_waits_for_identity_then_dpo_verifies(client, dpo, customer):
    login_verified(client, dpo)
    response = client.post(
        "/admin/compliance/datasubjectrequest/add/",
        {
            "customer": customer.pk,
            "kind": "access",
            "received_at_0": timezone.localtime().strftime("%d/%m/%Y"),
            "received_at_1": timezone.localtime().strftime("%H:%M:%S"),
            "intake_channel": "email",
            "answer_channel": "email",
            "answer_address": "ana@example.test",
            "details": "Pedido por e-mail",
            "events-TOTAL_FORMS": "0",
            "events-INITIAL_FORMS": "0",
            "exports-TOTAL_FORMS": "0",
            "exports-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    request = DataSubjectRequest.objects.get()
    assert request.status == DataSubjectRequest.Status.IDENTITY_PENDING
    assert request.created_by == dpo

    client.post(
        "/admin/compliance/datasubjectrequest/",
        {"action": "verify_identity_document", "_selected_action": [request.pk]},
    )
    request.refresh_from_db()
    assert request.status == DataSubjectRequest.Status.IN_PROGRESS
    assert request.identity_verified_by == dpo

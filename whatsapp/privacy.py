"""whatsapp's personal data, declared to the compliance registry: raw webhook bodies."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy

from compliance import registry
from compliance.registry import Category, ErasureReport, LegalBasis, Provider, Retention
from compliance.services import batched_delete
from compliance.services.retention import retention_cutoff
from conversations.models import Message
from whatsapp.models import EarlyStatus, WebhookEvent


def identifier_spellings(customer: Any) -> list[str]:
    """Every way the customer's identifiers may appear in a raw body: wa_id, BSUID, and the
    phone with and without '+' and Brazil's 9th digit."""
    values = {customer.wa_id, customer.bsuid, customer.parent_bsuid or None}
    phone = (customer.phone_e164 or "").lstrip("+")
    if phone:
        values.add(phone)
        if phone.startswith("55") and len(phone) == 13 and phone[4] == "9":
            values.add(phone[:4] + phone[5:])  # without the 9th digit
    return sorted(v for v in values if v)


class WebhookEventsProvider(Provider):
    key = "whatsapp.webhook_events"
    label = _lazy("Eventos brutos recebidos do WhatsApp")
    purpose = _lazy(
        "Guardar o evento de Meta até ser processado e por alguns dias para reprocessamento"
    )
    fields = {
        "whatsapp.webhookevent": {"body": Category.CONTENT},
        # a delivery status that beat its send's response (swept after a day)
        "whatsapp.earlystatus": {"error_details": Category.CONTENT},
    }
    exempt = {
        "whatsapp.webhookevent": {
            "note": "Observação técnica, sem dados pessoais (help_text).",
            "body_sha256": "Resumo SHA-256 do corpo inteiro (com ids e horários aleatórios): "
            "não permite recuperar dados; apagado junto com a linha.",
        },
        "whatsapp.messagetemplate": {
            "name": "Nome do modelo aprovado pela Meta.",
            "body_text": "Texto do modelo com marcadores {{1}}, sem dados de clientes.",
            "components": "Estrutura do modelo (Meta).",
            "status_reason": "Motivo da Meta para a situação do modelo (ex.: SCAM).",
        },
    }
    legal_basis = (LegalBasis.CONTRACT,)
    retention = (Retention("webhook_events", _lazy("após o recebimento")),)
    recipients = (
        _lazy(
            "Meta Platforms (WhatsApp Business Cloud API), operador: transmite as mensagens e "
            "hospeda mídias por até 30 dias"
        ),
    )
    order = 30

    def _events(self, customer: Any):
        """The subject's raw events. ``body`` is encrypted at rest, so the database cannot
        search it: rows are decrypted and scanned in chunks (rare: erasure and export only;
        the table holds ~30 days)."""
        spellings = [f'"{value}"' for value in identifier_spellings(customer)]
        if not spellings:
            return WebhookEvent.objects.none()
        pks = [
            event.pk
            for event in WebhookEvent.objects.only("pk", "body").iterator(chunk_size=500)
            if any(s in (event.body or "") for s in spellings)
        ]
        return WebhookEvent.objects.filter(pk__in=pks)

    def count(self, customer: Any) -> dict[str, int]:
        return {
            _("Eventos brutos do WhatsApp (guardados por poucos dias)"): self._events(
                customer
            ).count()
        }

    def export(self, customer: Any) -> dict[str, Any]:
        # Raw bodies may batch other people's messages: only their dates are exported; the
        # subject's messages themselves are in "messages".
        return {
            "webhook_events": [
                {"received_at": e.received_at.isoformat(), "status": e.status}
                for e in self._events(customer).only("received_at", "status")
            ]
        }

    def erase(self, customer: Any, report: ErasureReport, *, request: Any = None) -> None:
        # Unprocessed events are left to the processor (deleting them could lose other
        # customers' messages); they expire with the raw-event retention.
        events = self._events(customer).exclude(status=WebhookEvent.Status.RECEIVED)
        report.add("deleted", "whatsapp.webhookevent", events.delete()[0])
        pending = self._events(customer).count()
        report.add("held", "whatsapp.webhookevent (pendente)", pending)
        # Runs before the conversations provider deletes the messages these statuses await.
        wamids = Message.objects.filter(conversation__customer=customer).values("wamid")
        early = EarlyStatus.objects.filter(wamid__in=wamids).delete()[0]
        report.add("deleted", "whatsapp.earlystatus", early)

    def purge(self, *, now: Any, batch_size: int, dry_run: bool) -> dict[str, int]:
        return {
            "webhook_events": batched_delete(
                WebhookEvent.objects.filter(
                    received_at__lt=retention_cutoff("webhook_events", now)
                ),
                batch_size=batch_size,
                dry_run=dry_run,
            )
        }


def register_all() -> None:
    registry.register(WebhookEventsProvider())

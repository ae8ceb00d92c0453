"""conversations' personal data, declared to the compliance registry (see compliance.registry).

Registered from ``ConversationsConfig.ready()``, with two hooks compliance calls without
importing this app: the WhatsApp sender for data-request answers and the live Anatel/SAC
service record of a protocol.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy

from compliance import registry
from compliance.registry import Category, ErasureReport, LegalBasis, Provider, Retention
from compliance.services import batched_delete, held_customer_ids, service_record_hold
from compliance.services.retention import retention_cutoff
from conversations.models import (
    Conversation,
    ConversationEvent,
    ConversationNote,
    Customer,
    Message,
)

logger = logging.getLogger(__name__)

META = _lazy(
    "Meta Platforms (WhatsApp Business Cloud API), operador: transmite as mensagens e hospeda "
    "mídias por até 30 dias"
)


def _ts(value: Any) -> str | None:
    return value.isoformat() if value else None


class CustomerProvider(Provider):
    key = "conversations.customer"
    label = _lazy("Cadastro do cliente")
    purpose = _lazy("Identificar o cliente no atendimento e vinculá-lo ao contrato")
    fields = {
        "conversations.customer": {
            "wa_id": Category.IDENTIFICATION,
            "bsuid": Category.IDENTIFICATION,
            "parent_bsuid": Category.IDENTIFICATION,
            "username": Category.IDENTIFICATION,
            "phone_e164": Category.CONTACT,
            "name": Category.IDENTIFICATION,
            "cpf": Category.IDENTIFICATION,
            "contract_ref": Category.CONTRACT,
            "metadata": Category.CONTENT,
            # Keyed HMACs of the identifiers and name words (pseudonymous: whoever holds
            # BLIND_INDEX_KEY can test a guess). Derived from the fields above, so erasing those
            # clears them; not exported (they say nothing the fields do not).
            "wa_id_bidx": Category.IDENTIFICATION,
            "bsuid_bidx": Category.IDENTIFICATION,
            "phone_bidx": Category.CONTACT,
            "cpf_bidx": Category.IDENTIFICATION,
            "name_bidx": Category.IDENTIFICATION,
        }
    }
    legal_basis = (LegalBasis.CONTRACT,)
    retention = (
        Retention(
            "messages",
            _lazy("após a última conversa ser eliminada pela retenção (então anonimizado)"),
        ),
    )
    recipients = (META,)
    order = 90  # last: every other row points at the customer

    def count(self, customer: Customer) -> dict[str, int]:
        return {_("Cadastro (nome, telefone, identificadores do WhatsApp)"): 1}

    def export(self, customer: Customer) -> dict[str, Any]:
        return {
            "customer": {
                "id": customer.pk,
                "name": customer.name,
                "phone": customer.phone_e164,
                "wa_id": customer.wa_id,
                "bsuid": customer.bsuid,
                "username": customer.username,
                "cpf": customer.cpf,
                "contract_ref": customer.contract_ref,
                "status": customer.status,
                "metadata": customer.metadata,
                "created_at": _ts(customer.created_at),
            }
        }

    def object_refs(self, customer: Customer):
        yield ("conversations.customer", str(customer.pk))

    def cache_keys(self, customer: Customer):
        yield f"customer:{customer.pk}:profile"

    def erase(self, customer: Customer, report: ErasureReport, *, request: Any = None) -> None:
        # Irreversible: identifiers are cleared, not hashed (a hashed phone can be re-identified).
        n = Customer.objects.filter(pk=customer.pk).update(
            wa_id=None,
            bsuid=None,
            parent_bsuid="",
            username="",
            phone_e164=None,
            name="",
            cpf="",
            contract_ref="",
            metadata={},
            status=Customer.Status.ANONYMIZED,
            updated_at=timezone.now(),
        )
        report.add("anonymized", "conversations.customer", n)

    def purge(self, *, now: Any, batch_size: int, dry_run: bool) -> dict[str, int]:
        """Anonymise customers with no conversation left, untouched for the message period."""
        qs = (
            Customer.objects.exclude(status=Customer.Status.ANONYMIZED)
            .filter(conversations__isnull=True, updated_at__lt=retention_cutoff("messages", now))
            .exclude(pk__in=held_customer_ids())
            .exclude(data_requests__status__in=["received", "identity_pending", "in_progress"])
        )
        if dry_run:
            return {"customers_anonymized": qs.count()}
        total = 0
        while True:
            pks = list(qs.values_list("pk", flat=True)[:batch_size])
            if not pks:
                break
            for pk in pks:
                self.erase(Customer(pk=pk), ErasureReport())
            total += len(pks)
            if len(pks) < batch_size:
                break
        return {"customers_anonymized": total}


def _synthesis(conversation: Conversation) -> str:
    """A synthesis of the contact from structured fields only (never message text)."""
    parts = [
        _("Atendimento pelo WhatsApp aberto em %(d)s")
        % {"d": timezone.localtime(conversation.opened_at).strftime("%d/%m/%Y %H:%M")}
    ]
    for event in conversation.events.all():
        if event.kind in (
            ConversationEvent.Kind.ESCALATED,
            ConversationEvent.Kind.TRANSFERRED,
            ConversationEvent.Kind.CLOSED,
        ):
            parts.append(str(ConversationEvent.Kind(event.kind).label))
    if conversation.team_id:
        parts.append(_("equipe: %(team)s") % {"team": conversation.team.name})
    return "; ".join(parts) + "."


def _classification(conversation: Conversation) -> str:
    # The Anatel kind of demand (information, complaint, cancellation…), when known.
    kind = conversation.get_request_kind_display() if conversation.request_kind else ""
    label = conversation.get_resolution_display() if conversation.resolution else ""
    return " / ".join(x for x in (str(kind), str(label)) if x) or str(
        Conversation.State(conversation.state).label
    )


def live_service_record(*, protocol: str) -> dict[str, Any] | None:
    conversation = (
        Conversation.objects.select_related("team")
        .prefetch_related("events")
        .filter(protocol=protocol)
        .first()
    )
    if conversation is None:
        return None
    return {
        "protocol": conversation.protocol,
        "opened_at": conversation.opened_at,
        "closed_at": conversation.closed_at,
        "classification": _classification(conversation),
        "synthesis": _synthesis(conversation),
        "response": conversation.get_resolution_display() if conversation.resolution else "",
    }


class ConversationsProvider(Provider):
    key = "conversations.conversations"
    label = _lazy("Conversas, mensagens e mídias do atendimento")
    purpose = _lazy(
        "Prestar o atendimento (SAC), registrar protocolos e o histórico de demandas exigidos "
        "pela Anatel"
    )
    fields = {
        "conversations.conversation": {
            "resolution_note": Category.CONTENT,
            # the customer's own words after the satisfaction survey (encrypted at rest)
            "csat_comment": Category.CONTENT,
        },
        "conversations.conversationnote": {"text": Category.CONTENT},
        "conversations.message": {
            "text": Category.CONTENT,
            "payload": Category.CONTENT,
            "media_file": Category.CONTENT,
            "media_filename": Category.CONTENT,
            "media_id": Category.CONTENT,
            "error_details": Category.CONTENT,
        },
    }
    exempt = {
        "conversations.conversation": {
            "escalation_reason": "Código do motivo (ex.: bot:human_requested), nunca texto.",
        },
        "conversations.conversationevent": {
            "data": "Só ids, motivos e números, nunca texto do cliente (docstring do modelo).",
        },
        "conversations.cannedresponse": {"body": "Resposta pronta escrita pela equipe."},
        "conversations.liveevent": {
            "data": "Ids, situações e números, nunca texto do cliente (docstring do modelo); "
            "apagado após CONSOLE_EVENT_RETENTION_MINUTES.",
        },
    }
    legal_basis = (LegalBasis.CONTRACT, LegalBasis.LEGAL_OBLIGATION)
    retention = (
        Retention(
            "messages", _lazy("após o encerramento da conversa"), _lazy("minimização, art. 6º, III")
        ),
        Retention(
            "service_records",
            _lazy("após o encerramento (protocolo, datas, classificação)"),
            _lazy("RGC Anatel 765/2023; Decreto 11.034/2022 art. 12 §5º"),
        ),
    )
    legal_hold = _lazy(
        "Registro do atendimento exigido pela Anatel — protocolo, datas de registro e conclusão, "
        "classificação e síntese, sem o texto das mensagens — por 3 anos (RGC Anatel 765/2023; "
        "Decreto 11.034/2022 art. 12 §5º; LGPD art. 7º, II e art. 16, I)"
    )
    recipients = (META,)
    order = 40

    def _conversations(self, customer: Customer):
        return Conversation.objects.filter(customer=customer)

    def _messages(self, customer: Customer):
        return Message.objects.filter(conversation__customer=customer)

    def count(self, customer: Customer) -> dict[str, int]:
        return {
            _("Conversas (protocolos)"): self._conversations(customer).count(),
            _("Mensagens"): self._messages(customer).count(),
            _("Notas internas da equipe"): ConversationNote.objects.filter(
                conversation__customer=customer
            ).count(),
            _("Arquivos de mídia"): self._messages(customer).exclude(media_file="").count(),
        }

    def export(self, customer: Customer) -> dict[str, Any]:
        conversations = (
            self._conversations(customer).select_related("team").prefetch_related("events")
        )
        messages = self._messages(customer).order_by("created_at", "pk")
        return {
            "conversations": [
                {
                    "protocol": c.protocol,
                    "state": c.state,
                    "opened_at": _ts(c.opened_at),
                    "closed_at": _ts(c.closed_at),
                    "team": c.team.name if c.team_id else None,
                    "resolution": c.resolution,
                    "resolution_note": c.resolution_note,
                    "csat_score": c.csat_score,
                    "csat_answered_at": _ts(c.csat_answered_at),
                    "csat_comment": c.csat_comment,
                    "csat_comment_at": _ts(c.csat_comment_at),
                    "events": [
                        {"kind": e.kind, "at": _ts(e.created_at), "data": e.data}
                        for e in c.events.all()
                    ],
                }
                for c in conversations.order_by("opened_at")
            ],
            "messages": [
                {
                    "protocol": m.conversation.protocol,
                    "direction": m.direction,
                    "sender": m.sender_kind,
                    "type": m.type,
                    "text": m.text,
                    "media_filename": m.media_filename or None,
                    "media_file": _media_arcname(m) if m.media_file else None,
                    "payload": m.payload,
                    "status": m.status,
                    "created_at": _ts(m.created_at),
                }
                for m in messages.select_related("conversation")
            ],
            "notes": [
                {
                    "protocol": n.conversation.protocol,
                    "author": n.author.username if n.author_id else None,
                    "text": n.text,
                    "created_at": _ts(n.created_at),
                }
                for n in ConversationNote.objects.filter(conversation__customer=customer)
                .select_related("conversation", "author")
                .order_by("created_at", "pk")
            ],
            "media_files": [
                {
                    "message_created_at": _ts(m.created_at),
                    "file": _media_arcname(m),
                    "mime_type": m.media_mime_type,
                }
                for m in messages.exclude(media_file="")
            ],
        }

    def files(self, customer: Customer):
        for m in self._messages(customer).exclude(media_file="").only("pk", "media_file"):
            yield (_media_arcname(m), m.media_file.name)

    def object_refs(self, customer: Customer):
        for pk in self._conversations(customer).values_list("pk", flat=True):
            yield ("conversations.conversation", str(pk))
        for pk in self._messages(customer).values_list("pk", flat=True):
            yield ("conversations.message", str(pk))

    def cache_keys(self, customer: Customer):
        for pk in self._conversations(customer).values_list("pk", flat=True):
            yield f"conversation:{pk}:context"

    def erase(self, customer: Customer, report: ErasureReport, *, request: Any = None) -> None:
        conversations = list(
            self._conversations(customer).select_related("team").prefetch_related("events")
        )
        for conversation in conversations:
            service_record_hold(
                protocol=conversation.protocol,
                opened_at=conversation.opened_at,
                closed_at=conversation.closed_at,
                classification=_classification(conversation),
                synthesis=_synthesis(conversation),
                response=conversation.get_resolution_display() if conversation.resolution else "",
                subject_identifier=customer.phone_e164 or customer.bsuid,
                request=request,
            )
        report.add("held", "compliance.servicerecordhold", len(conversations))
        messages = self._messages(customer)
        report.files_to_delete.extend(
            name for name in messages.exclude(media_file="").values_list("media_file", flat=True)
        )
        report.add(
            "deleted",
            "conversations.conversationnote",
            ConversationNote.objects.filter(conversation__customer=customer).delete()[0],
        )
        # Replies from other conversations may point here; SET_NULL handles them.
        report.add("deleted", "conversations.message", messages.delete()[0])
        report.add(
            "deleted",
            "conversations.conversationevent",
            ConversationEvent.objects.filter(conversation__customer=customer).delete()[0],
        )
        report.add(
            "deleted", "conversations.conversation", self._conversations(customer).delete()[0]
        )

    def purge(self, *, now: Any, batch_size: int, dry_run: bool) -> dict[str, int]:
        """Messages, media and survey comments of conversations closed before the messages
        period, conversation by conversation; then service records past theirs.

        Due conversations are read through ``conv_messages_due`` (closed, messages not purged
        yet) and marked ``messages_purged_at`` as they are done, so a night's cost follows
        what expired since the last run — not the size of the messages table, nor the year of
        service records kept after their messages. Messages go in batches of ``batch_size``
        rows, each its own transaction; customers under a legal hold are skipped (their
        conversations stay due and are purged the night after the hold is released).
        """
        held = held_customer_ids()
        due = Conversation.objects.filter(
            state=Conversation.State.CLOSED,
            closed_at__lt=retention_cutoff("messages", now),
            messages_purged_at__isnull=True,
        ).exclude(customer_id__in=held)
        if dry_run:
            messages = Message.objects.filter(conversation__in=due.values("pk"))
            counts = {
                "media_files": messages.exclude(media_file="").count(),
                "messages": messages.count(),
                "csat_comments": due.filter(csat_comment__isnull=False).count(),
            }
        else:
            counts = self._purge_due(due, now=now, batch_size=batch_size)
        # The service record (protocol, dates, classification) outlives the messages: 3 years.
        old_conversations = Conversation.objects.filter(
            state=Conversation.State.CLOSED,
            closed_at__lt=retention_cutoff("service_records", now),
        ).exclude(customer_id__in=held)
        counts["service_records"] = batched_delete(
            old_conversations, batch_size=batch_size, dry_run=dry_run
        )
        return counts

    def _purge_due(self, due: Any, *, now: Any, batch_size: int) -> dict[str, int]:
        files: list[str] = []

        def collect(pks: list[int]) -> None:
            names = Message.objects.filter(pk__in=pks).exclude(media_file="")
            batch = list(names.values_list("media_file", flat=True))
            files.extend(batch)
            transaction.on_commit(lambda: _delete_files(batch))

        counts = {"messages": 0, "csat_comments": 0}
        while True:
            ids = list(due.order_by("closed_at", "pk").values_list("pk", flat=True)[:batch_size])
            if not ids:
                break
            counts["messages"] += batched_delete(
                Message.objects.filter(conversation_id__in=ids),
                batch_size=batch_size,
                dry_run=False,
                before_delete=collect,
            )
            with transaction.atomic():
                # The survey comment is the customer's text: it goes with the messages, while
                # the score stays with the service record.
                counts["csat_comments"] += Conversation.objects.filter(
                    pk__in=ids, csat_comment__isnull=False
                ).update(csat_comment=None)
                Conversation.objects.filter(pk__in=ids).update(messages_purged_at=now)
            if len(ids) < batch_size:
                break
        counts["media_files"] = len(files)
        return counts


def _delete_files(names: list[str]) -> None:
    for name in names:
        try:
            default_storage.delete(name)
        except OSError:
            logger.exception("retention: could not delete a media file")


def _media_arcname(message: Message) -> str:
    base = (message.media_file.name or "").rsplit("/", 1)[-1]
    return f"{message.pk}-{base}"


def register_all() -> None:
    registry.register(CustomerProvider())
    registry.register(ConversationsProvider())
    registry.register_service_record_source(live_service_record)

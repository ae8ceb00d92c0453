"""Template campaigns to a segment of customers: services (writes) and the reads admin needs.

Life cycle: draft → (``campaign_schedule``) scheduled → at ``starts_at`` running ⇄
(``campaign_pause`` / ``campaign_resume``) paused → completed; ``campaign_cancel`` from any
state before completed. Every change locks the campaign row; the sending task takes the same
lock per batch, so a pause or cancel takes effect before the next send.

**Who receives it.** When the campaign starts, its segment (plans, cities, contract statuses
— active and blocked when none is chosen —, a region tag, or the customers attached to an
outage) gives contracts; their phones are matched to our WhatsApp customers through
``conversations``' own look-up (never a filter on identity columns here); numbers that never
talked to us on WhatsApp are only counted (``Campaign.unreachable``: Meta allows
business-initiated messages only to people who opted in to them). Each customer is one
``CampaignRecipient``, once.

**Consent** (compliance ledger, LGPD art. 7º I and V, art. 8 §5): a *marketing* campaign
reaches only customers whose latest marketing row is a grant; a *service* notice (planned
maintenance, due date: the contract's own communications) reaches every customer except those
whose latest service-messages row is a revocation. Checked when the list is made and again
right before each send, so a "SAIR" (marketing revoked by ``whatsapp/inbound.py``) in the
middle of a campaign stops the remaining sends to that customer.

**Sending.** In batches of ``CAMPAIGN_BATCH_SIZE``, paced by ``isp.bulk.bulk_slot`` (the
limiter; when it refuses, the batch stops and the task runs again when the slot opens), each
recipient becomes an outbound template Message in the outbox on the customer's conversation
(``isp.bulk.customer_conversation``); delivery, retries, Meta's tier and pair limits and the
status webhooks are the channel's. Progress counts are aggregates over the recipients'
message statuses (``campaign_progress``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Count, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from compliance.services.consent import consent_latest_by_customer
from conversations import selectors as conv_selectors
from conversations.models import Message
from conversations.services import message_record_outbound
from isp import bulk
from isp import selectors as isp_selectors
from isp.models import Campaign, CampaignRecipient, Contract, OutageConversation
from isp.selectors import Region

logger = logging.getLogger(__name__)

DEFAULT_STATUSES = (Contract.Status.ACTIVE, Contract.Status.BLOCKED)
_CATEGORY_FOR_PURPOSE = {
    Campaign.Purpose.SERVICE_MESSAGES: "UTILITY",
    Campaign.Purpose.MARKETING: "MARKETING",
}
_DELIVERED = (Message.Status.DELIVERED, Message.Status.READ, Message.Status.PLAYED)
_READ = (Message.Status.READ, Message.Status.PLAYED)


class CampaignError(Exception):
    """A refused campaign operation; ``message`` is for people (admin)."""

    def __init__(self, message: Any) -> None:
        super().__init__(str(message))
        self.message = message


# --- validation ------------------------------------------------------------------------------------


def campaign_template_problem(
    *, purpose: str, template_name: str, template_language: str, parameters: list[Any]
) -> str | None:
    """Why this template cannot be sent for this purpose now (pt-BR), or None."""
    template = bulk.approved_template(template_name, template_language)
    if template is None:
        return _("O modelo %(name)s não está aprovado pela Meta.") % {"name": template_name}
    wanted = _CATEGORY_FOR_PURPOSE.get(purpose)
    if template.category and wanted and template.category != wanted:
        return _(
            "O modelo %(name)s é da categoria %(category)s; esta finalidade exige um modelo "
            "%(wanted)s."
        ) % {"name": template.name, "category": template.category, "wanted": wanted}
    if not isinstance(parameters, list) or any(
        not isinstance(p, str) or not p.strip() for p in parameters
    ):
        return _("Os parâmetros devem ser uma lista de textos preenchidos.")
    if len(parameters) != template.parameter_count:
        return _("O modelo %(name)s pede %(n)d parâmetro(s); foram informados %(given)d.") % {
            "name": template.name,
            "n": template.parameter_count,
            "given": len(parameters),
        }
    if any(len(p) > 1024 for p in parameters):
        return _("Parâmetro do modelo longo demais.")
    return None


# --- state changes --------------------------------------------------------------------------------


def _locked(campaign: Campaign) -> Campaign:
    return Campaign.objects.select_for_update().get(pk=campaign.pk)


def _enqueue(campaign_id: int) -> None:
    from isp.tasks import campaign_run

    transaction.on_commit(lambda: campaign_run.delay(campaign_id))


def campaign_schedule(*, campaign: Campaign, user: Any = None) -> Campaign:
    """Draft → scheduled; it starts at ``starts_at`` (at once when that has passed)."""
    with transaction.atomic():
        row = _locked(campaign)
        if row.status != Campaign.Status.DRAFT:
            raise CampaignError(_("Só um rascunho pode ser agendado."))
        problem = campaign_template_problem(
            purpose=row.purpose,
            template_name=row.template_name,
            template_language=row.template_language,
            parameters=row.parameters,
        )
        if problem:
            raise CampaignError(problem)
        template = bulk.approved_template(row.template_name, row.template_language)
        row.template_body = template.body_text if template else ""
        row.status = Campaign.Status.SCHEDULED
        row.save(update_fields=["status", "template_body"])
        _enqueue(row.pk)
    logger.info("campaigns: scheduled", extra={"campaign_id": campaign.pk})
    campaign.refresh_from_db()
    return campaign


def campaign_pause(*, campaign: Campaign, user: Any = None) -> Campaign:
    """Scheduled or running → paused: no further message is queued until resumed."""
    with transaction.atomic():
        row = _locked(campaign)
        if row.status not in (Campaign.Status.SCHEDULED, Campaign.Status.RUNNING):
            raise CampaignError(_("Só uma campanha agendada ou enviando pode ser pausada."))
        row.status = Campaign.Status.PAUSED
        row.save(update_fields=["status"])
    campaign.refresh_from_db()
    return campaign


def campaign_resume(*, campaign: Campaign, user: Any = None) -> Campaign:
    """Paused → running (scheduled, if it had not started yet); sending goes on at once."""
    with transaction.atomic():
        row = _locked(campaign)
        if row.status != Campaign.Status.PAUSED:
            raise CampaignError(_("Só uma campanha pausada pode ser retomada."))
        row.status = Campaign.Status.RUNNING if row.started_at else Campaign.Status.SCHEDULED
        row.next_run_at = timezone.now()
        row.save(update_fields=["status", "next_run_at"])
        _enqueue(row.pk)
    campaign.refresh_from_db()
    return campaign


def campaign_cancel(*, campaign: Campaign, user: Any = None) -> Campaign:
    """Stop for good: recipients not yet sent are marked cancelled (messages already queued
    stay in the outbox)."""
    now = timezone.now()
    with transaction.atomic():
        row = _locked(campaign)
        if row.status in (Campaign.Status.COMPLETED, Campaign.Status.CANCELLED):
            raise CampaignError(_("Esta campanha já terminou."))
        row.status = Campaign.Status.CANCELLED
        row.finished_at = now
        row.save(update_fields=["status", "finished_at"])
        row.recipients.filter(state=CampaignRecipient.State.QUEUED).update(
            state=CampaignRecipient.State.SKIPPED,
            skip_reason=CampaignRecipient.Skip.CANCELLED,
            processed_at=now,
        )
    campaign.refresh_from_db()
    return campaign


# --- the recipient list ---------------------------------------------------------------------------


def campaign_segment_contracts(campaign: Campaign) -> QuerySet[Contract]:
    """The contracts of the campaign's segment (not used for outage campaigns)."""
    regions = [Region(**campaign.region_values)] if campaign.region_values else None
    return isp_selectors.contracts_segment(
        plans=campaign.plans or None,
        cities=campaign.cities or None,
        statuses=campaign.contract_statuses or DEFAULT_STATUSES,
        regions=regions,
    )


def _segment_customers(campaign: Campaign) -> tuple[dict[int, str], int]:
    """``{customer id: contract ref}`` of the segment, and how many numbers had no customer."""
    if campaign.outage_id:
        found: dict[int, str] = {}
        rows = OutageConversation.objects.filter(outage_id=campaign.outage_id).order_by("pk")
        for customer_id, ref in rows.values_list("customer_id", "contract_ref"):
            found.setdefault(customer_id, ref)
        return found, 0
    found = {}
    unreachable = 0
    phones_by_ref = isp_selectors.contract_phones(campaign_segment_contracts(campaign))
    for ref, phones in phones_by_ref.items():
        for phone in dict.fromkeys(phones):
            customer = conv_selectors.customer_find_by_phone(phone=phone)
            if customer is None:
                unreachable += 1
                continue
            found.setdefault(customer.pk, ref)
    return found, unreachable


def _consent_skip(purpose: str, latest: bool | None) -> str:
    """The skip reason for a customer whose latest consent row for ``purpose`` is ``latest``."""
    if latest is False:
        return CampaignRecipient.Skip.OPTED_OUT
    if purpose == Campaign.Purpose.MARKETING and latest is not True:
        return CampaignRecipient.Skip.NO_CONSENT
    return CampaignRecipient.Skip.NONE


def _start(campaign: Campaign, now: datetime) -> None:
    """List the recipients (consent checked once here) and mark the campaign running."""
    customers, unreachable = _segment_customers(campaign)
    consent = consent_latest_by_customer(customer_ids=list(customers), purpose=campaign.purpose)
    rows = []
    for customer_id, ref in customers.items():
        skip = _consent_skip(campaign.purpose, consent.get(customer_id))
        rows.append(
            CampaignRecipient(
                campaign=campaign,
                customer_id=customer_id,
                contract_ref=(ref or "")[:64],
                state=CampaignRecipient.State.SKIPPED if skip else CampaignRecipient.State.QUEUED,
                skip_reason=skip,
                processed_at=now if skip else None,
                created_at=now,
            )
        )
    CampaignRecipient.objects.bulk_create(rows, batch_size=1000, ignore_conflicts=True)
    campaign.status = Campaign.Status.RUNNING
    campaign.started_at = now
    campaign.unreachable = unreachable
    campaign.next_run_at = now
    campaign.save(update_fields=["status", "started_at", "unreachable", "next_run_at"])
    logger.info(
        "campaigns: started",
        extra={"campaign_id": campaign.pk, "recipients": len(rows), "unreachable": unreachable},
    )


# --- sending ------------------------------------------------------------------------------------


def campaign_run_batch(
    *, campaign_id: int, limit: int | None = None, now: datetime | None = None
) -> bulk.BulkProgress:
    """Start a due campaign and queue its next batch of messages (see module docstring)."""
    now = now or timezone.now()
    limit = limit or bulk.batch_size()
    sent = 0
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().filter(pk=campaign_id).first()
        if campaign is None:
            return bulk.BulkProgress(done=True)
        if campaign.status == Campaign.Status.SCHEDULED:
            if campaign.starts_at > now:
                return bulk.BulkProgress(
                    done=False, retry_in=(campaign.starts_at - now).total_seconds()
                )
            _start(campaign, now)
        if campaign.status != Campaign.Status.RUNNING:
            return bulk.BulkProgress(done=True)  # paused, cancelled or finished
        template = bulk.approved_template(campaign.template_name, campaign.template_language)
        if template is None:
            # Meta paused or disabled it meanwhile: stop sending until someone resumes.
            campaign.status = Campaign.Status.PAUSED
            campaign.save(update_fields=["status"])
            logger.warning(
                "campaigns: template not approved, paused", extra={"campaign_id": campaign_id}
            )
            return bulk.BulkProgress(done=True)
        recipients = list(
            campaign.recipients.filter(state=CampaignRecipient.State.QUEUED).order_by("pk")[:limit]
        )
        consent = consent_latest_by_customer(
            customer_ids=[r.customer_id for r in recipients], purpose=campaign.purpose
        )
        text, payload = bulk.template_message(template, list(campaign.parameters))
        for recipient in recipients:
            skip = _consent_skip(campaign.purpose, consent.get(recipient.customer_id))
            conversation = None
            if not skip:
                conversation = bulk.customer_conversation(customer_id=recipient.customer_id)
                if conversation is None:
                    skip = CampaignRecipient.Skip.NO_CONVERSATION
            if skip:
                _finish(recipient, CampaignRecipient.State.SKIPPED, now, skip=skip)
                continue
            allowed, wait = bulk.bulk_slot()
            if not allowed:
                campaign.next_run_at = now + timedelta(seconds=wait)
                campaign.save(update_fields=["next_run_at"])
                return bulk.BulkProgress(sent=sent, done=False, retry_in=wait)
            message = message_record_outbound(
                conversation=conversation,
                sender_kind=Message.SenderKind.SYSTEM,
                type=Message.Type.TEMPLATE,
                text=text,
                payload=payload,
            )
            _finish(recipient, CampaignRecipient.State.SENT, now, message=message)
            sent += 1
        more = campaign.recipients.filter(state=CampaignRecipient.State.QUEUED).exists()
        if more:
            campaign.next_run_at = now
            campaign.save(update_fields=["next_run_at"])
        else:
            campaign.status = Campaign.Status.COMPLETED
            campaign.finished_at = now
            campaign.next_run_at = None
            campaign.save(update_fields=["status", "finished_at", "next_run_at"])
    if sent:
        logger.info("campaigns: batch queued", extra={"campaign_id": campaign_id, "count": sent})
    return bulk.BulkProgress(sent=sent, done=not more)


def _finish(
    recipient: CampaignRecipient,
    state: str,
    now: datetime,
    *,
    skip: str = "",
    message: Message | None = None,
) -> None:
    recipient.state = state
    recipient.skip_reason = skip
    recipient.message = message
    recipient.processed_at = now
    recipient.save(update_fields=["state", "skip_reason", "message", "processed_at"])


def campaigns_due(*, now: datetime | None = None) -> list[int]:
    """Campaigns the beat task must run now: scheduled ones whose time came, and running ones
    whose next batch is more than a minute late (its task was lost)."""
    now = now or timezone.now()
    late = now - timedelta(minutes=1)
    return list(
        Campaign.objects.filter(
            Q(status=Campaign.Status.SCHEDULED, starts_at__lte=now)
            | Q(status=Campaign.Status.RUNNING, next_run_at__lt=late)
            | Q(status=Campaign.Status.RUNNING, next_run_at__isnull=True)
        )
        .order_by("pk")
        .values_list("pk", flat=True)[:50]
    )


# --- progress -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Progress:
    total: int = 0
    queued: int = 0
    skipped: int = 0
    sent: int = 0  # handed to the outbox
    accepted: int = 0  # Meta accepted it (sent, delivered or read)
    delivered: int = 0
    read: int = 0
    failed: int = 0


PROGRESS_ANNOTATIONS: dict[str, Any] = {
    "n_total": Count("recipients"),
    "n_queued": Count("recipients", filter=Q(recipients__state=CampaignRecipient.State.QUEUED)),
    "n_skipped": Count("recipients", filter=Q(recipients__state=CampaignRecipient.State.SKIPPED)),
    "n_sent": Count("recipients", filter=Q(recipients__state=CampaignRecipient.State.SENT)),
    "n_accepted": Count(
        "recipients",
        filter=Q(recipients__message__status__in=(Message.Status.SENT, *_DELIVERED)),
    ),
    "n_delivered": Count("recipients", filter=Q(recipients__message__status__in=_DELIVERED)),
    "n_read": Count("recipients", filter=Q(recipients__message__status__in=_READ)),
    "n_failed": Count("recipients", filter=Q(recipients__message__status=Message.Status.FAILED)),
}


def campaigns_with_progress(queryset: QuerySet[Campaign]) -> QuerySet[Campaign]:
    """Annotate each campaign with its counts (``n_total``…): one grouped query for a list."""
    return queryset.annotate(**PROGRESS_ANNOTATIONS)


def campaign_progress(*, campaign: Campaign) -> Progress:
    """The campaign's counts from its recipients and their messages' statuses (one query)."""
    row = Campaign.objects.filter(pk=campaign.pk).aggregate(**PROGRESS_ANNOTATIONS)
    return Progress(**{key[2:]: value or 0 for key, value in row.items()})


def campaign_skips(*, campaign: Campaign) -> dict[str, int]:
    """Skipped recipients by reason."""
    rows = (
        campaign.recipients.filter(state=CampaignRecipient.State.SKIPPED)
        .values_list("skip_reason")
        .annotate(n=Count("pk"))
    )
    return {reason: n for reason, n in rows}

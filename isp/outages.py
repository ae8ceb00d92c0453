"""Outages: which open outage affects a customer, attaching conversations, detection, the
all-clear. Services (writes) and the reads they need, for the bot, admin and tasks.

- **Who is affected.** A conversation's contracts (``isp.services`` identity: the WhatsApp
  number matched against the contract phones, or the CPF the customer typed) matched against
  the region tags of each open outage (``isp.selectors.Region``: any combination of city,
  neighbourhood, POP, OLT and box, case-insensitive). Open outages are few: one indexed query
  says whether any is open, then one query per open outage.
- **Attach.** The bot answers with the outage and records an ``OutageConversation`` instead
  of queuing the conversation for a person (``bot/outage.py`` closes it as resolved by the bot).
- **All-clear.** ``outage_resolve`` closes the outage and, after commit, starts the task
  ``isp.outage_all_clear``: in batches, under the outage's row lock, each pending link is
  marked in the same transaction as its message is queued, and a customer with several
  attached conversations gets one notice (the others are marked ``covered``). A retried task
  finds nothing pending: nobody is told twice. Inside the 24-hour window the notice is a text;
  outside it, the approved template ``OUTAGE_ALL_CLEAR_TEMPLATE``.
- **Detection.** Each report of no connection by an identified customer not covered by an
  outage is a row (``OutageReport``) with the contract's tags; a task counts the distinct
  customers per tag (``OUTAGE_DETECT_TAGS``) over the last ``OUTAGE_DETECT_WINDOW_MINUTES``
  with one indexed query each and, at ``OUTAGE_DETECT_MIN_CUSTOMERS``, raises one
  ``OutageAlert`` for that region (a partial unique constraint keeps it to one while pending;
  a region with an open outage or an alert dismissed within the window raises none).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from conversations.models import Conversation, Message
from conversations.services import ServiceError, message_record_outbound
from isp import bulk
from isp import erp as isp_erp
from isp import formatting as fmt
from isp import selectors as isp_selectors
from isp import services as isp_services
from isp.erp import ErpError
from isp.models import REGION_TAGS, Contract, Outage, OutageAlert, OutageConversation, OutageReport
from isp.selectors import Region

logger = logging.getLogger(__name__)


class OutageError(Exception):
    """A refused outage operation; ``message`` is for people (admin)."""

    def __init__(self, message: Any) -> None:
        super().__init__(str(message))
        self.message = message


@dataclass(frozen=True)
class OutageMatch:
    """The open outage that affects one of the conversation's contracts."""

    outage: Outage
    contract: Contract


def outage_region(outage: Outage | OutageAlert) -> Region:
    return Region(**outage.region_values())


# --- reads ----------------------------------------------------------------------------------


def outages_open() -> list[Outage]:
    return list(Outage.objects.filter(status=Outage.Status.OPEN).order_by("starts_at", "pk"))


def outage_affecting(*, contracts: QuerySet[Contract]) -> OutageMatch | None:
    """The earliest open outage covering one of ``contracts``, or None."""
    for outage in outages_open():
        contract = (
            isp_selectors.contracts_in_region(outage_region(outage))
            .filter(pk__in=contracts.values("pk"))
            .order_by("ref")
            .first()
        )
        if contract is not None:
            return OutageMatch(outage, contract)
    return None


def conversation_contracts_identified(
    *, conversation: Conversation, identify: bool = True
) -> QuerySet[Contract]:
    """The conversation's contracts, identifying it by its WhatsApp number if it is not yet
    (unless ``identify`` is False: the caller already tried this turn).

    Call inside the bot's decision (the conversation's row lock). An ERP that cannot be asked
    leaves the customer unidentified here: the normal flow answers.
    """
    if not isp_erp.enabled():
        return Contract.objects.none()
    state = isp_services.identity_for(conversation=conversation)
    if identify and not state.identified:
        try:
            isp_services.identity_by_phone(conversation=conversation, state=state)
        except ErpError as exc:
            logger.warning(
                "outages: ERP look-up by phone failed",
                extra={"conversation_id": conversation.pk, "reason": exc.reason},
            )
            return Contract.objects.none()
    return isp_selectors.conversation_contracts(conversation=conversation)


def outages_dashboard_tile() -> Any:
    """The dashboard's "Falhas em andamento" tile: open outages (with the conversations the bot
    attached) and pending detection alerts; two small queries."""
    from django.db.models import Count
    from django.urls import reverse

    from conversations.hooks import DashboardTile

    open_rows = list(
        Outage.objects.filter(status=Outage.Status.OPEN)
        .annotate(attached=Count("attachments"))
        .order_by("starts_at", "pk")[:4]
    )
    alerts = OutageAlert.objects.filter(status=OutageAlert.Status.PENDING).count()
    lines = [
        _("%(place)s · %(n)d conversa(s) vinculada(s)")
        % {"place": outage.region_label, "n": outage.attached}
        for outage in open_rows
    ]
    if alerts:
        lines.append(_("%(n)d alerta(s) de possível falha para analisar") % {"n": alerts})
        link, label = reverse("admin:isp_outagealert_changelist"), _("Ver alertas")
    else:
        link, label = reverse("admin:isp_outage_changelist"), _("Registro de falhas")
    return DashboardTile(
        key="outages",
        title=str(_("Falhas em andamento")),
        figure=Outage.objects.filter(status=Outage.Status.OPEN).count(),
        lines=tuple(str(line) for line in lines),
        link=link,
        link_label=str(label),
        attention=bool(alerts or open_rows),
    )


# --- the bot's writes ---------------------------------------------------------------------------


def outage_attach(
    *, outage: Outage, conversation: Conversation, contract_ref: str = ""
) -> OutageConversation:
    """Attach a conversation to an outage (once); call inside the bot's decision transaction."""
    link, _created = OutageConversation.objects.get_or_create(
        outage=outage,
        conversation=conversation,
        defaults={"customer_id": conversation.customer_id, "contract_ref": contract_ref[:64]},
    )
    return link


def outage_report(*, conversation: Conversation, contracts: QuerySet[Contract]) -> list[int]:
    """Record that the customer reported no connection, per contract; detection runs after
    commit (``isp.detect_outage``). Returns the report ids."""
    now = timezone.now()
    rows = [
        OutageReport(
            customer_id=conversation.customer_id,
            contract_ref=contract.ref,
            reported_at=now,
            **{tag: getattr(contract, tag) for tag in REGION_TAGS},
        )
        for contract in contracts
    ]
    if not rows:
        return []
    created = OutageReport.objects.bulk_create(rows)
    ids = [row.pk for row in created if row.pk is not None]
    if not ids:  # backends that do not return ids from bulk inserts
        ids = list(
            OutageReport.objects.filter(
                customer_id=conversation.customer_id, reported_at=now
            ).values_list("pk", flat=True)
        )

    def _enqueue() -> None:
        from isp.tasks import detect_outage

        detect_outage.delay(ids)

    transaction.on_commit(_enqueue)
    return ids


# --- detection ----------------------------------------------------------------------------------


def _tag_filter(tag: str, report: OutageReport) -> dict[str, str] | None:
    """The region one tag groups reports by (a neighbourhood only within its city)."""
    if tag == "neighbourhood":
        if not (report.city and report.neighbourhood):
            return None
        return {"city": report.city, "neighbourhood": report.neighbourhood}
    value = getattr(report, tag, "")
    return {tag: value} if value else None


def outage_detect(*, report_ids: list[int], now: datetime | None = None) -> list[OutageAlert]:
    """Raise an alert for each region of these reports that crossed the threshold.

    Counting is one indexed ``COUNT(DISTINCT customer)`` per tag of each distinct region.
    """
    now = now or timezone.now()
    window = timedelta(minutes=int(settings.OUTAGE_DETECT_WINDOW_MINUTES))
    threshold = max(1, int(settings.OUTAGE_DETECT_MIN_CUSTOMERS))
    tags = [t for t in settings.OUTAGE_DETECT_TAGS if t in OutageAlert.Tag.values]
    raised: list[OutageAlert] = []
    seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    for report in OutageReport.objects.filter(pk__in=report_ids):
        for tag in tags:
            region = _tag_filter(tag, report)
            if region is None or (tag, tuple(sorted(region.items()))) in seen:
                continue
            seen.add((tag, tuple(sorted(region.items()))))
            customers = (
                OutageReport.objects.filter(reported_at__gte=now - window, **region)
                .values("customer_id")
                .distinct()
                .count()
            )
            if customers < threshold:
                continue
            alert = _raise_alert(tag, region, customers, window, now)
            if alert is not None:
                raised.append(alert)
    return raised


def _raise_alert(
    tag: str, region: dict[str, str], customers: int, window: timedelta, now: datetime
) -> OutageAlert | None:
    values = {name: region.get(name, "") for name in REGION_TAGS}
    if OutageAlert.objects.filter(status=OutageAlert.Status.PENDING, tag=tag, **values).exists():
        return None
    recently_dismissed = OutageAlert.objects.filter(
        status=OutageAlert.Status.DISMISSED, tag=tag, handled_at__gte=now - window, **values
    ).exists()
    if recently_dismissed or _covered_by_open_outage(values):
        return None
    try:
        with transaction.atomic():
            alert = OutageAlert.objects.create(
                tag=tag,
                customers=customers,
                window_minutes=int(window.total_seconds() // 60),
                created_at=now,
                **values,
            )
    except IntegrityError:
        return None  # another worker raised it a moment ago: one pending alert per region
    logger.warning(
        "outages: possible outage detected",
        extra={"alert_id": alert.pk, "tag": tag, "customers": customers},
    )
    return alert


def _covered_by_open_outage(values: dict[str, str]) -> bool:
    """An open outage whose region contains this one (every tag it sets matches)."""
    for outage in outages_open():
        own = outage.region_values()
        if own and all(values.get(k, "").lower() == v.lower() for k, v in own.items()):
            return True
    return False


def outage_alert_accept(*, alert: OutageAlert, outage: Outage, user: Any) -> OutageAlert:
    """The supervisor registered ``outage`` from ``alert``."""
    OutageAlert.objects.filter(pk=alert.pk, status=OutageAlert.Status.PENDING).update(
        status=OutageAlert.Status.ACCEPTED,
        outage=outage,
        handled_by=user,
        handled_at=timezone.now(),
    )
    alert.refresh_from_db()
    return alert


def outage_alert_dismiss(*, alert: OutageAlert, user: Any) -> bool:
    """Not an outage (or already handled elsewhere); True when it was pending."""
    return (
        OutageAlert.objects.filter(pk=alert.pk, status=OutageAlert.Status.PENDING).update(
            status=OutageAlert.Status.DISMISSED, handled_by=user, handled_at=timezone.now()
        )
        > 0
    )


def outage_alert_prefill(alert: OutageAlert) -> dict[str, str]:
    """Initial values for the outage form opened from an alert."""
    values = alert.region_values()
    values["title"] = _("Falha em %(place)s") % {"place": alert.region_label}
    return values


# --- resolution and the all-clear --------------------------------------------------------------


def outage_resolve(*, outage: Outage, user: Any = None, now: datetime | None = None) -> Outage:
    """Close an open outage and start the all-clear to every attached customer (after commit).

    Raises ``OutageError`` when it is already resolved.
    """
    now = now or timezone.now()
    with transaction.atomic():
        changed = Outage.objects.filter(pk=outage.pk, status=Outage.Status.OPEN).update(
            status=Outage.Status.RESOLVED, resolved_at=now, resolved_by=user, updated_at=now
        )
        if not changed:
            raise OutageError(_("Esta falha já foi encerrada."))
        outage.refresh_from_db()
        transaction.on_commit(lambda: _enqueue_all_clear(outage.pk))
    logger.info("outages: resolved", extra={"outage_id": outage.pk})
    return outage


def _enqueue_all_clear(outage_id: int) -> None:
    from isp.tasks import outage_all_clear

    outage_all_clear.delay(outage_id)


def all_clear_text(outage: Outage) -> str:
    """The free-text all-clear (inside the 24-hour window)."""
    return _(
        "Boa notícia: a falha que afetava a internet em %(place)s foi resolvida às %(when)s. "
        "Se a sua conexão ainda não voltou, desligue o roteador e a ONU da tomada por 30 "
        "segundos e ligue de novo. Se continuar sem internet, é só responder esta mensagem."
    ) % {
        "place": outage.region_label,
        "when": fmt.day_and_time(outage.resolved_at or timezone.now()),
    }


def outage_all_clear_batch(
    *, outage_id: int, limit: int | None = None, now: datetime | None = None
) -> bulk.BulkProgress:
    """Notify the next batch of customers attached to a resolved outage (see module docstring).

    Holds the outage's row lock for the batch, so two runs of the task never interleave.
    """
    now = now or timezone.now()
    limit = limit or bulk.batch_size()
    sent = 0
    with transaction.atomic():
        outage = Outage.objects.select_for_update().filter(pk=outage_id).first()
        if outage is None or outage.status != Outage.Status.RESOLVED:
            return bulk.BulkProgress(done=True)
        links = list(
            OutageConversation.objects.filter(
                outage=outage, all_clear=OutageConversation.AllClear.PENDING
            ).order_by("pk")[:limit]
        )
        if not links:
            return bulk.BulkProgress(done=True)
        notified = set(
            OutageConversation.objects.filter(
                outage=outage,
                customer_id__in={link.customer_id for link in links},
                all_clear__in=[
                    OutageConversation.AllClear.TEXT,
                    OutageConversation.AllClear.TEMPLATE,
                ],
            ).values_list("customer_id", flat=True)
        )
        for link in links:
            if link.customer_id in notified:
                _mark(link, OutageConversation.AllClear.COVERED, None, now)
                continue
            allowed, wait = bulk.bulk_slot()
            if not allowed:
                return bulk.BulkProgress(sent=sent, done=False, retry_in=wait)
            outcome, message = _send_all_clear(outage, link)
            _mark(link, outcome, message, now)
            if message is not None:
                notified.add(link.customer_id)
                sent += 1
        more = OutageConversation.objects.filter(
            outage=outage, all_clear=OutageConversation.AllClear.PENDING
        ).exists()
    if sent:
        logger.info("outages: all-clear queued", extra={"outage_id": outage_id, "count": sent})
    return bulk.BulkProgress(sent=sent, done=not more)


def _mark(link: OutageConversation, outcome: str, message: Message | None, now: datetime) -> None:
    link.all_clear = outcome
    link.all_clear_message = message
    link.all_clear_at = now
    link.save(update_fields=["all_clear", "all_clear_message", "all_clear_at"])


def _send_all_clear(outage: Outage, link: OutageConversation) -> tuple[str, Message | None]:
    conversation = bulk.customer_conversation(customer_id=link.customer_id)
    if conversation is None:
        return OutageConversation.AllClear.UNREACHABLE, None
    if conversation.window_is_open():
        try:
            message = message_record_outbound(
                conversation=conversation,
                sender_kind=Message.SenderKind.SYSTEM,
                text=all_clear_text(outage),
                allow_closed=True,
            )
            return OutageConversation.AllClear.TEXT, message
        except ServiceError:
            pass  # the window closed a moment ago: the template below
    template = bulk.approved_template(settings.OUTAGE_ALL_CLEAR_TEMPLATE)
    if template is None:
        logger.warning(
            "outages: window closed and no approved all-clear template",
            extra={"outage_id": outage.pk},
        )
        return OutageConversation.AllClear.NO_TEMPLATE, None
    parameters = [outage.region_label][: template.parameter_count]
    text, payload = bulk.template_message(template, parameters)
    message = message_record_outbound(
        conversation=conversation,
        sender_kind=Message.SenderKind.SYSTEM,
        type=Message.Type.TEMPLATE,
        text=text,
        payload=payload,
    )
    return OutageConversation.AllClear.TEMPLATE, message


def outages_needing_all_clear(*, now: datetime | None = None) -> list[int]:
    """Resolved outages with customers still to notify a minute after resolution (the beat
    task re-starts them: a lost task never leaves anyone without the all-clear)."""
    now = now or timezone.now()
    return list(
        Outage.objects.filter(
            Q(status=Outage.Status.RESOLVED),
            Q(resolved_at__lt=now - timedelta(minutes=1)),
            Q(attachments__all_clear=OutageConversation.AllClear.PENDING),
        )
        .distinct()
        .values_list("pk", flat=True)[:50]
    )

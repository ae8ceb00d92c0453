"""Reads of the ISP's data, for the bot and for what comes next (outages, campaigns).

Region/node queries work on ``isp.Contract`` rows: the demo ERP's own records, and the cached
copies of a real ERP's contracts (refreshed whenever the bot looks one up; an import fills the
rest). Each filter argument left ``None`` matches everything; text matches ignore case.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Q, QuerySet
from django.utils import timezone

from conversations.models import Conversation
from isp.models import Contract, ContractPhone, ConversationContract


@dataclass(frozen=True)
class Region:
    """A place in the network: any combination of the tags on ``Contract``.

    ``Region(city="Campinas", neighbourhood="Cambuí")`` is a neighbourhood;
    ``Region(olt="OLT-03")`` everything behind one OLT; ``Region(box="CTO-03-17")`` one box.
    """

    city: str | None = None
    neighbourhood: str | None = None
    pop: str | None = None
    olt: str | None = None
    box: str | None = None

    def q(self) -> Q:
        condition = Q()
        for name in ("city", "neighbourhood", "pop", "olt", "box"):
            value = getattr(self, name)
            if value is not None:
                condition &= Q(**{f"{name}__iexact": value})
        return condition


def contracts_in_region(
    *regions: Region, statuses: Iterable[str] | None = None
) -> QuerySet[Contract]:
    """Contracts in any of ``regions`` (an outage may cover several boxes or neighbourhoods).

    Without regions, no contract (an outage must say where it is). ``statuses`` narrows to
    e.g. ``["active", "blocked"]``.
    """
    if not regions:
        return Contract.objects.none()
    condition = Q()
    for region in regions:
        condition |= region.q()
    qs = Contract.objects.filter(condition)
    if statuses is not None:
        qs = qs.filter(status__in=list(statuses))
    return qs


def contracts_segment(
    *,
    plans: Iterable[str] | None = None,
    cities: Iterable[str] | None = None,
    statuses: Iterable[str] | None = None,
    regions: Iterable[Region] | None = None,
) -> QuerySet[Contract]:
    """Contracts of a campaign segment: plan names, cities, statuses and region tags, ANDed."""
    qs = Contract.objects.all()
    if plans is not None:
        qs = qs.filter(plan_name__in=list(plans))
    if cities is not None:
        condition = Q()
        for city in cities:
            condition |= Q(city__iexact=city)
        qs = qs.filter(condition)
    if statuses is not None:
        qs = qs.filter(status__in=list(statuses))
    if regions is not None:
        region_list = list(regions)
        if region_list:
            qs = qs.filter(pk__in=contracts_in_region(*region_list).values("pk"))
    return qs


def contract_phones(contracts: QuerySet[Contract]) -> dict[str, list[str]]:
    """E.164 phones registered on ``contracts``, by contract ref (decrypted: handle with care)."""
    result: dict[str, list[str]] = {}
    rows = ContractPhone.objects.filter(contract__in=contracts).select_related("contract")
    for row in rows.order_by("contract__ref", "pk"):
        result.setdefault(row.contract.ref, []).append(row.phone)
    return result


def region_tags() -> dict[str, list[str]]:
    """Every distinct value of each tag (pick lists for the outage register and campaigns)."""
    tags: dict[str, list[str]] = {}
    for name in ("city", "neighbourhood", "pop", "olt", "box"):
        values = (
            Contract.objects.exclude(**{name: ""})
            .order_by(name)
            .values_list(name, flat=True)
            .distinct()
        )
        tags[name] = list(values)
    return tags


def identity_live(*, conversation: Conversation) -> ConversationContract | None:
    """The conversation's identity state while it has not expired, else None."""
    return ConversationContract.objects.filter(
        conversation=conversation, expires_at__gt=timezone.now()
    ).first()


def conversation_contracts(*, conversation: Conversation) -> QuerySet[Contract]:
    """The contracts a conversation proved access to (by phone or CPF, while it lasts):
    how an outage finds which region the customer writing in is in."""
    state = identity_live(conversation=conversation)
    if state is None or not state.method:
        return Contract.objects.none()
    return Contract.objects.filter(ref__in=state.contract_refs)

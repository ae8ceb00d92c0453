"""The ISP's writes: who a conversation has proved to be, and the ERP operations on its behalf.

Identity before data. A conversation may see a contract only after

1. its WhatsApp number matches a phone the ISP registered on the contract (several contracts:
   a household, or one person with several addresses), or
2. the person typed a CPF with valid check digits that is the holder's CPF of the contract.

The result lives in ``ConversationContract`` for ``ISP_IDENTITY_TTL_MINUTES``. Every function
here that takes a ``state`` must be called inside the caller's transaction while it holds the
conversation's row lock (the bot's decision does), so two messages never race on one state.
A CPF is only ever held in memory: it is compared through its blind index (demo) or sent to the
ERP in a POST body (rest), never stored on the state, logged, or given to the model.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from conversations.models import Conversation
from conversations.phones import normalize_phone
from isp import models
from isp.cpf import is_valid_cpf
from isp.erp import ErpConflict, get_adapter
from isp.erp import base as erp

logger = logging.getLogger(__name__)


def _ttl() -> timedelta:
    return timedelta(minutes=int(getattr(settings, "ISP_IDENTITY_TTL_MINUTES", 30)))


def identity_for(*, conversation: Conversation) -> models.ConversationContract:
    """The conversation's identity state; an expired one is reset (identify again)."""
    now = timezone.now()
    state, created = models.ConversationContract.objects.get_or_create(
        conversation=conversation, defaults={"expires_at": now + _ttl()}
    )
    if not created and state.expires_at <= now:
        _reset(state, now)
    return state


def _reset(state: models.ConversationContract, now: datetime) -> None:
    state.method = ""
    state.contract_refs = []
    state.selected_ref = ""
    state.awaiting = ""
    state.pending_action = ""
    state.offered = []
    state.cpf_attempts = 0
    state.identified_at = None
    state.expires_at = now + _ttl()
    state.save()


def _touch(state: models.ConversationContract, fields: list[str]) -> None:
    state.expires_at = timezone.now() + _ttl()
    state.save(update_fields=[*fields, "expires_at", "updated_at"])


def _usable(contracts: list[erp.Contract]) -> list[erp.Contract]:
    """Cancelled contracts give no access: a former customer sees nothing."""
    return [c for c in contracts if not c.is_cancelled]


def _identify(
    state: models.ConversationContract, method: str, contracts: list[erp.Contract]
) -> None:
    state.method = method
    state.contract_refs = [c.ref for c in contracts]
    state.selected_ref = contracts[0].ref if len(contracts) == 1 else ""
    state.identified_at = timezone.now()
    state.cpf_attempts = 0
    _touch(state, ["method", "contract_refs", "selected_ref", "identified_at", "cpf_attempts"])
    for contract in contracts:
        contract_mirror(contract=contract)


def identity_by_phone(
    *, conversation: Conversation, state: models.ConversationContract
) -> list[erp.Contract]:
    """Identify by the WhatsApp number; return the contracts it gives access to (maybe none).

    Raises ``ErpError`` when the ERP cannot be asked.
    """
    customer = conversation.customer
    phone = customer.phone_e164 or normalize_phone(customer.wa_id)
    if not phone:
        return []  # a customer known only by a username (BSUID): the CPF it is
    contracts = _usable(get_adapter().contracts_by_phone(phone))
    if contracts:
        _identify(state, models.ConversationContract.Method.PHONE, contracts)
    return contracts


@dataclass(frozen=True)
class CpfCheck:
    """``outcome``: matched, invalid (check digits), no_match, or locked (too many tries)."""

    outcome: str
    contracts: tuple[erp.Contract, ...] = ()
    attempts_left: int = 0


def cpf_max_attempts() -> int:
    return int(getattr(settings, "ISP_CPF_MAX_ATTEMPTS", 3))


def identity_check_cpf(*, state: models.ConversationContract, cpf: str) -> CpfCheck:
    """Check a typed CPF and, when it is a holder's, identify the conversation with it.

    Every attempt counts, valid or not, so nobody can walk through CPFs on one conversation.
    "no_match" is the same answer whether the CPF is unknown or only has cancelled contracts:
    the reply must never reveal whether a CPF is someone's customer.
    """
    limit = cpf_max_attempts()
    if state.cpf_attempts >= limit:
        return CpfCheck("locked")
    state.cpf_attempts += 1
    _touch(state, ["cpf_attempts"])
    left = max(0, limit - state.cpf_attempts)
    if not is_valid_cpf(cpf):
        return CpfCheck("invalid" if left else "locked", attempts_left=left)
    contracts = _usable(get_adapter().contracts_by_cpf(cpf))
    if not contracts:
        return CpfCheck("no_match" if left else "locked", attempts_left=left)
    _identify(state, models.ConversationContract.Method.CPF, contracts)
    return CpfCheck("matched", tuple(contracts), attempts_left=left)


def identity_await(
    *,
    state: models.ConversationContract,
    awaiting: str,
    action: str,
    offered: list[str] | None = None,
) -> None:
    """Remember what the next customer turn answers (a CPF, a contract, a window, a yes)."""
    state.awaiting = awaiting
    state.pending_action = action
    state.offered = list(offered or [])
    _touch(state, ["awaiting", "pending_action", "offered"])


def identity_select(*, state: models.ConversationContract, ref: str) -> bool:
    """Choose one of the conversation's contracts; False when ``ref`` is not one of them."""
    if ref not in state.contract_refs:
        return False
    state.selected_ref = ref
    _touch(state, ["selected_ref"])
    return True


def identity_done(*, state: models.ConversationContract) -> None:
    """The pending request was answered: nothing awaited any more (identity stays)."""
    identity_await(state=state, awaiting="", action="")


# --- cached copies of the ERP's contracts -----------------------------------------------------


def contract_mirror(*, contract: erp.Contract) -> models.Contract | None:
    """Keep our copy of a contract a real ERP returned, so outages and campaign segments can
    query its region tags. Demo contracts are already ours: nothing to copy. A copy from an
    imported file is refreshed too (and stays marked as imported)."""
    if get_adapter().name == "demo":
        return None
    existing = models.Contract.objects.filter(ref=contract.ref).first()
    if existing is not None and existing.source not in models.Contract.COPY_SOURCES:
        return existing
    now = timezone.now()
    with transaction.atomic():
        row = existing or models.Contract(ref=contract.ref, source=models.Contract.Source.ERP)
        row.holder_name = contract.holder_name
        row.set_cpf(contract.holder_cpf if is_valid_cpf(contract.holder_cpf) else "")
        row.address = contract.address
        row.city = contract.region.city[:80]
        row.neighbourhood = contract.region.neighbourhood[:80]
        row.pop = contract.region.pop[:40]
        row.olt = contract.region.olt[:40]
        row.box = contract.region.box[:40]
        row.plan_name = contract.plan.name[:80]
        row.download_mbps = contract.plan.download_mbps
        row.upload_mbps = contract.plan.upload_mbps
        row.monthly_price = contract.plan.monthly_price
        row.status = contract.status
        row.synced_at = now
        row.save()
        phones = {p for p in (normalize_phone(raw) for raw in contract.phones) if p}
        indexes = {models.phone_index(p): p for p in phones}
        row.phones.exclude(phone_index__in=indexes).delete()
        known = set(row.phones.values_list("phone_index", flat=True))
        models.ContractPhone.objects.bulk_create(
            models.ContractPhone(contract=row, phone=phone, phone_index=index)
            for index, phone in indexes.items()
            if index not in known
        )
    return row


# --- trust unlock --------------------------------------------------------------------------------


@dataclass(frozen=True)
class UnlockOutcome:
    """``outcome``: granted (``until``), not_blocked, refused_policy (``last_at``,
    ``next_at``: when the policy allows another) or refused_by_erp."""

    outcome: str
    until: datetime | None = None
    last_at: datetime | None = None
    next_at: datetime | None = None


def trust_unlock_policy() -> tuple[int, int]:
    """(days the unlock lasts, days between two unlocks of one contract)."""
    return (
        int(getattr(settings, "ISP_TRUST_UNLOCK_DAYS", 3)),
        int(getattr(settings, "ISP_TRUST_UNLOCK_INTERVAL_DAYS", 30)),
    )


def trust_unlock_check(*, ref: str) -> UnlockOutcome | None:
    """The policy's refusal for ``ref`` now, or None when an unlock is allowed."""
    _days, interval = trust_unlock_policy()
    last = models.TrustUnlock.objects.filter(contract_ref=ref).order_by("-granted_at").first()
    if last is not None and last.granted_at > timezone.now() - timedelta(days=interval):
        return UnlockOutcome(
            "refused_policy",
            last_at=last.granted_at,
            next_at=last.granted_at + timedelta(days=interval),
        )
    return None


def trust_unlock_request(*, conversation: Conversation, contract: erp.Contract) -> UnlockOutcome:
    """Unblock ``contract`` in trust if it is blocked and the ISP's policy allows it.

    The policy (``ISP_TRUST_UNLOCK_DAYS`` long, once per ``ISP_TRUST_UNLOCK_INTERVAL_DAYS``) is
    checked on our own records before the ERP is asked, under a row lock on our contract row
    (the demo ERP's record, or the copy made when the conversation was identified), so two
    conversations asking at once (a household) never grant twice. Raises ``ErpError`` when the
    ERP cannot be asked.
    """
    if contract.status != "blocked":
        return UnlockOutcome("not_blocked")
    days, _interval = trust_unlock_policy()
    adapter = get_adapter()
    with transaction.atomic():
        # Serialise requests for one contract (PostgreSQL locks the row; SQLite the database).
        list(models.Contract.objects.select_for_update().filter(ref=contract.ref).values("pk"))
        refusal = trust_unlock_check(ref=contract.ref)
        if refusal is not None:
            return refusal
        try:
            result = adapter.trust_unlock(contract.ref, days=days)
        except ErpConflict as exc:
            if exc.reason == "not_blocked":
                return UnlockOutcome("not_blocked")
            return UnlockOutcome("refused_by_erp")
        models.TrustUnlock.objects.create(
            contract_ref=contract.ref,
            adapter=adapter.name,
            conversation=conversation,
            until=result.until,
        )
    logger.info("isp: trust unlock granted", extra={"conversation_id": conversation.pk})
    return UnlockOutcome("granted", until=result.until)


# --- technical visits ---------------------------------------------------------------------------


def visit_windows(*, ref: str) -> list[erp.VisitWindow]:
    """Free windows for the contract, at most 10 (a WhatsApp list holds 10 rows)."""
    days = int(getattr(settings, "ISP_VISIT_WINDOW_DAYS", 7))
    return get_adapter().visit_windows(ref, days=days)[:10]


def visit_book(*, ref: str, window_id: str) -> erp.ServiceOrder:
    """Open a service order in a window; ``ErpConflict("window_unavailable")`` if it filled."""
    return get_adapter().open_service_order(ref, window_id=window_id, reason="technical_visit")

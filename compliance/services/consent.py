"""The consent ledger (LGPD Art. 8): grant and revoke per purpose, revocation as easy as grant."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from django.db import transaction

from compliance.models import ConsentRecord

# Versions of the texts shown to the customer when asking for consent (bump when they change:
# Art. 8 §6 / Art. 9 §2 require telling the customer about changes).
CONSENT_TEXT_VERSIONS = {
    ConsentRecord.Purpose.SERVICE_MESSAGES: "servico-2026-01",
    ConsentRecord.Purpose.MARKETING: "marketing-2026-01",
    ConsentRecord.Purpose.AI_NOTICE: "ia-2026-01",
}

# A whole message equal to one of these (accents, case and punctuation ignored) revokes
# marketing at once. Whole-message matching keeps "não quero parar de receber boletos" safe.
MARKETING_STOP_KEYWORDS = frozenset(
    {
        "sair",
        "parar",
        "pare",
        "stop",
        "cancelar propaganda",
        "cancelar propagandas",
        "cancelar marketing",
        "nao quero propaganda",
        "descadastrar",
    }
)


def normalize_text(text: str) -> str:
    """Lower-case, accents removed, punctuation collapsed to single spaces."""
    decomposed = unicodedata.normalize("NFKD", text or "")
    ascii_text = "".join(c for c in decomposed if not unicodedata.combining(c)).lower()
    return re.sub(r"[^a-z0-9]+", " ", ascii_text).strip()


def consent_state(*, customer: Any) -> dict[str, bool | None]:
    """Current state per purpose: True granted, False revoked, None never asked."""
    state: dict[str, bool | None] = dict.fromkeys(ConsentRecord.Purpose.values)
    for purpose in ConsentRecord.Purpose.values:
        latest = (
            ConsentRecord.objects.filter(customer=customer, purpose=purpose)
            .order_by("-created_at", "-pk")
            .values_list("action", flat=True)
            .first()
        )
        if latest is not None:
            state[purpose] = latest == ConsentRecord.Action.GRANTED
    return state


def _record(
    *,
    customer: Any,
    purpose: str,
    action: str,
    channel: str,
    proof: dict[str, Any] | None,
    recorded_by: Any,
    text_version: str | None,
) -> ConsentRecord:
    if purpose not in ConsentRecord.Purpose.values:
        raise ValueError(f"unknown consent purpose {purpose!r}")
    with transaction.atomic():
        return ConsentRecord.objects.create(
            customer=customer,
            purpose=purpose,
            action=action,
            text_version=text_version or CONSENT_TEXT_VERSIONS[purpose],
            channel=channel,
            proof=proof or {},
            recorded_by=recorded_by,
        )


def consent_grant(
    *,
    customer: Any,
    purpose: str,
    channel: str,
    proof: dict[str, Any] | None = None,
    recorded_by: Any = None,
    text_version: str | None = None,
) -> ConsentRecord:
    """Record a grant. ``proof``: how the will was shown (e.g. ``{"wamid": …, "button": …}``);
    never the message text (Art. 8 §2: the burden of proof is ours)."""
    return _record(
        customer=customer,
        purpose=purpose,
        action=ConsentRecord.Action.GRANTED,
        channel=channel,
        proof=proof,
        recorded_by=recorded_by,
        text_version=text_version,
    )


def consent_revoke(
    *,
    customer: Any,
    purpose: str,
    channel: str,
    proof: dict[str, Any] | None = None,
    recorded_by: Any = None,
) -> ConsentRecord | None:
    """Record a revocation (Art. 8 §5). None when the purpose is already revoked or never given."""
    current = consent_state(customer=customer).get(purpose)
    if current is False:
        return None
    # Marketing opt-outs are recorded even without a recorded grant (a do-not-contact entry).
    if current is None and purpose != ConsentRecord.Purpose.MARKETING:
        return None
    return _record(
        customer=customer,
        purpose=purpose,
        action=ConsentRecord.Action.REVOKED,
        channel=channel,
        proof=proof,
        recorded_by=recorded_by,
        text_version=None,
    )


def is_marketing_stop_keyword(text: str) -> bool:
    return normalize_text(text) in MARKETING_STOP_KEYWORDS


def consent_revoke_by_keyword(customer: Any, text: str, *, wamid: str = "") -> bool:
    """True when ``text`` is a stop keyword ("SAIR", "PARAR", "STOP", "CANCELAR PROPAGANDA"…):
    marketing is revoked at once (a ledger row, unless already revoked).

    The inbound path calls this before the bot and, on True, sends the confirmation and stops
    (the keyword is not a support demand). Marketing opt-out is recorded even when no grant was
    ever recorded, so a later campaign list never includes the customer.
    """
    if not is_marketing_stop_keyword(text):
        return False
    consent_revoke(
        customer=customer,
        purpose=ConsentRecord.Purpose.MARKETING,
        channel="whatsapp",
        proof={"kind": "keyword", "keyword": normalize_text(text), "wamid": wamid},
    )
    return True


def marketing_allowed(*, customer: Any) -> bool:
    """Campaigns may go only to customers whose latest marketing row is a grant."""
    return consent_state(customer=customer).get(ConsentRecord.Purpose.MARKETING) is True


def consent_latest_by_customer(*, customer_ids: list[int], purpose: str) -> dict[int, bool]:
    """The current state of ``purpose`` for many customers at once: ``{customer id: granted}``.

    Customers with no row for the purpose are absent (never asked). One query over the ledger
    index (customer, purpose, created_at), for bulk sends that check a batch before sending.
    """
    if purpose not in ConsentRecord.Purpose.values:
        raise ValueError(f"unknown consent purpose {purpose!r}")
    latest: dict[int, bool] = {}
    rows = (
        ConsentRecord.objects.filter(customer_id__in=customer_ids, purpose=purpose)
        .order_by("customer_id", "-created_at", "-pk")
        .values_list("customer_id", "action")
    )
    for customer_id, action in rows:
        latest.setdefault(customer_id, action == ConsentRecord.Action.GRANTED)
    return latest

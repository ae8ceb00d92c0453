"""The bot during a known outage: answer with it instead of queuing the customer.

``bot.services`` calls :func:`check` in the decision's transaction (the conversation's row
lock) for a turn about no or slow connection. When the customer's contract (identified by the
WhatsApp number, or the CPF typed earlier in the conversation) is in the region of an open
outage, the policy answers ``outage``: the reply is the outage's public message with the
estimate in São Paulo time, the conversation is attached to the outage and **closed as resolved
by the bot** (no satisfaction survey): nothing is left for a person to do until the network is
fixed, and the all-clear arrives when the outage is resolved. "Falar com atendente" stays one
tap away (a new conversation, where asking for a person always wins), and so does typing it.

Otherwise a report of no connection from an identified customer is recorded for detection
(``isp.outages.outage_report``), and the normal flow answers.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.translation import gettext as _

from bot import replies, selfservice
from conversations.models import Conversation
from isp import formatting as fmt
from isp import outages as isp_outages
from isp.models import Outage

OUTAGE_INTENTS = frozenset({"no_connection", "slow_connection"})
REPORT_INTENTS = frozenset({"no_connection"})


@dataclass(frozen=True)
class OutageTurn:
    outage: Outage
    contract_ref: str


def check(*, conversation: Conversation, intent: str) -> OutageTurn | None:
    """The open outage affecting this customer, or None (then a report may be recorded).

    Costs one indexed query when no outage is open and the intent is not a report; an ERP
    look-up by phone only when the conversation is not identified yet.
    """
    if intent not in OUTAGE_INTENTS:
        return None
    any_open = Outage.objects.filter(status=Outage.Status.OPEN).exists()
    if not any_open and intent not in REPORT_INTENTS:
        return None
    # For "no connection" the self-service check (``selfservice.eligible_intents``) already
    # tried the number this turn: do not ask the ERP twice.
    contracts = isp_outages.conversation_contracts_identified(
        conversation=conversation, identify=intent not in selfservice.SOFT_INTENTS
    )
    if any_open:
        match = isp_outages.outage_affecting(contracts=contracts)
        if match is not None:
            return OutageTurn(match.outage, match.contract.ref)
    if intent in REPORT_INTENTS:
        isp_outages.outage_report(conversation=conversation, contracts=contracts)
    return None


def answer(turn: OutageTurn, *, protocol: str) -> tuple[str, dict]:
    """The outage reply: what happened, the estimate, what comes next; a person one tap away."""
    outage = turn.outage
    if outage.estimated_end_at:
        estimate = _("Previsão de normalização: %(when)s.") % {
            "when": fmt.day_and_time(outage.estimated_end_at)
        }
    else:
        estimate = _("Ainda não temos previsão de normalização.")
    body = "\n\n".join(
        [
            _("⚠️ Identificamos uma falha na rede que atende o seu endereço (%(place)s).")
            % {"place": outage.region_label},
            outage.public_message.strip(),
            estimate,
            _(
                "Você não precisa abrir chamado: avisaremos aqui assim que a conexão for "
                "normalizada. Protocolo: %(protocol)s."
            )
            % {"protocol": protocol},
        ]
    )
    return replies.buttons(body, [(replies.HUMAN, _("Falar com atendente"))])

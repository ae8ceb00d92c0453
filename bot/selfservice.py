"""Self-service with the ISP's ERP: second copy of the bill, trust unlock, connection status,
technical-visit scheduling and plan information, each only after identity is proved.

``bot.services`` calls :func:`run` inside the decision's transaction, holding the
conversation's row lock, when the policy returns ``self_service``. It returns a :class:`Turn`:
the replies to queue (text, interactive, document), the decision's rule and intent, and
whether to hand the conversation to a person (the ERP failed, the CPF could not be
confirmed, no visit window). It sends nothing itself.

Identity before data (``isp.services``): the WhatsApp number is matched against the phones on
the contracts; without a match, bill / unlock / visit ask for the holder's CPF, while status
and plan (which need no proof to help) fall back to the knowledge base. Several contracts (one
CPF with two addresses, or a household sharing a number) are offered as a WhatsApp list.
The CPF is compared and forgotten: it never reaches a reply, a log line or the model.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext as _

from bot import replies
from bot.analysis import Analysis
from bot.policy import SMALL_TALK_INTENTS
from conversations.models import Conversation
from isp import erp as isp_erp
from isp import formatting as fmt
from isp import selectors as isp_selectors
from isp import services as isp
from isp.erp import ErpConflict, ErpError, get_adapter
from isp.erp import base as erp
from isp.models import ConversationContract

logger = logging.getLogger(__name__)

ACTION_BY_INTENT = {
    "billing": "bill",
    "payment_confirmation": "unlock",
    "technical_visit": "visit",
    "no_connection": "status",
    "plan_change": "plan",
}
INTENT_BY_ACTION = {action: intent for intent, action in ACTION_BY_INTENT.items()}
# Need proof of identity: asked for a CPF when the number matches no contract.
STRONG_INTENTS = frozenset({"billing", "payment_confirmation", "technical_visit"})
# Served from the ERP only when the number already identifies the customer; otherwise the
# knowledge base answers (no personal data is needed to help with "sem internet").
SOFT_INTENTS = frozenset({"no_connection", "plan_change"})

# Steps that end with "Isso resolveu?": a "Sim"/"Não" after them closes or escalates.
CONFIRMING_STEPS = frozenset(
    {
        "bill_sent",
        "bill_none",
        "unlock_granted",
        "unlock_not_blocked",
        "status_online",
        "status_offline",
        "status_unknown",
        "visit_booked",
        "plan_info",
    }
)
CONFIRMING_RULES = frozenset(f"ss_{step}" for step in CONFIRMING_STEPS)


@dataclass(frozen=True)
class Reply:
    """One outbound message: ``type`` text | interactive | document."""

    type: str
    text: str
    payload: dict[str, Any] | None = None
    document: tuple[str, bytes] | None = None  # (filename, PDF bytes)


@dataclass
class Turn:
    step: str
    intent: str
    replies: list[Reply] = field(default_factory=list)
    escalate: str = ""  # an escalation reason, or "" when the bot keeps the conversation
    answered: bool = False  # counts as one bot answer (bot_attempts)

    @property
    def rule(self) -> str:
        return f"ss_{self.step}"[:40]


def _interactive(pair: tuple[str, dict[str, Any]]) -> Reply:
    body, interactive = pair
    return Reply("interactive", body, {"interactive": interactive})


def _text(text: str) -> Reply:
    return Reply("text", text)


# --- entry points ---------------------------------------------------------------------------------


def eligible_intents(*, conversation: Conversation, intent: str) -> frozenset[str]:
    """The intents the ERP serves for this conversation now (``policy.Context``).

    Asks the ERP for the WhatsApp number's contracts only for a soft intent, and only once per
    identification; an ERP failure here just leaves the knowledge base to answer.
    """
    if not isp_erp.enabled():
        return frozenset()
    if intent not in SOFT_INTENTS:
        return STRONG_INTENTS
    state = isp.identity_for(conversation=conversation)
    if state.identified:
        return STRONG_INTENTS | SOFT_INTENTS
    try:
        matched = isp.identity_by_phone(conversation=conversation, state=state)
    except ErpError as exc:
        logger.warning(
            "bot: ERP look-up by phone failed",
            extra={"conversation_id": conversation.pk, "reason": exc.reason},
        )
        return STRONG_INTENTS
    return STRONG_INTENTS | SOFT_INTENTS if matched else STRONG_INTENTS


def is_identity_turn(*, conversation: Conversation, analysis: Analysis) -> bool:
    """Does this turn answer a self-service question (a button, a list row, a CPF)?"""
    if not isp_erp.enabled():
        return False
    if analysis.reply_id:
        return True
    state = isp_selectors.identity_live(conversation=conversation)
    if state is None or state.awaiting != ConversationContract.Awaiting.CPF:
        return False
    return analysis.cpf is not None or analysis.triage.intent in SMALL_TALK_INTENTS


def awaiting_cpf(*, conversation: Conversation) -> bool:
    state = isp_selectors.identity_live(conversation=conversation)
    return state is not None and state.awaiting == ConversationContract.Awaiting.CPF


def run(*, conversation: Conversation, analysis: Analysis) -> Turn:
    """One self-service turn (see the module docstring). Call under the conversation's lock."""
    state = isp.identity_for(conversation=conversation)
    intent = analysis.triage.intent
    try:
        return _run(conversation, state, analysis)
    except ErpError as exc:
        # Unreachable, broken, or an answer we cannot read: a person takes over, the
        # customer is told so, and nothing half-done is left waiting for an answer.
        logger.warning(
            "bot: ERP failed, handing off",
            extra={
                "conversation_id": conversation.pk,
                "reason": exc.reason,
                "error": type(exc).__name__,
            },
        )
        action = state.pending_action or ACTION_BY_INTENT.get(intent, "")
        isp.identity_done(state=state)
        return Turn("erp_unavailable", INTENT_BY_ACTION.get(action, intent), [], "erp_unavailable")


def _run(conversation: Conversation, state: ConversationContract, analysis: Analysis) -> Turn:
    reply_id = analysis.reply_id
    if reply_id:
        return _on_reply(conversation, state, reply_id)
    if state.awaiting == ConversationContract.Awaiting.CPF and (
        analysis.cpf is not None or analysis.triage.intent in SMALL_TALK_INTENTS
    ):
        return _on_cpf(conversation, state, analysis.cpf)
    action = ACTION_BY_INTENT[analysis.triage.intent]
    return _start(conversation, state, action, cpf=analysis.cpf)


def _start(
    conversation: Conversation, state: ConversationContract, action: str, *, cpf: str | None
) -> Turn:
    if not state.identified:
        contracts = isp.identity_by_phone(conversation=conversation, state=state)
        if not contracts:
            isp.identity_await(state=state, awaiting="cpf", action=action)
            if cpf is not None:  # "2ª via, meu CPF é …": check it at once
                return _on_cpf(conversation, state, cpf)
            return Turn("ask_cpf", INTENT_BY_ACTION[action], [_interactive(replies.ask_cpf())])
    return _with_contract(state, action, reuse_selection=False)


def _on_cpf(conversation: Conversation, state: ConversationContract, cpf: str | None) -> Turn:
    action = state.pending_action or "bill"
    intent = INTENT_BY_ACTION[action]
    if cpf is None:
        check = isp.identity_check_cpf(state=state, cpf="")
        if check.outcome == "locked":
            return Turn("cpf_locked", intent, escalate="identity_failed")
        return Turn("cpf_missing", intent, [_interactive(replies.cpf_missing())])
    check = isp.identity_check_cpf(state=state, cpf=cpf)
    if check.outcome == "matched":
        return _with_contract(state, action, reuse_selection=False)
    if check.outcome == "invalid":
        pair = replies.cpf_invalid(attempts_left=check.attempts_left)
        return Turn("cpf_invalid", intent, [_interactive(pair)])
    if check.outcome == "no_match":
        pair = replies.cpf_refused(attempts_left=check.attempts_left)
        return Turn("cpf_refused", intent, [_interactive(pair)])
    isp.identity_done(state=state)
    return Turn("cpf_locked", intent, escalate="identity_failed")


def _on_reply(conversation: Conversation, state: ConversationContract, reply_id: str) -> Turn:
    action = state.pending_action
    intent = INTENT_BY_ACTION.get(action, "other")
    stale = Turn("stale_choice", intent, [_interactive(replies.stale_choice())])
    if reply_id.startswith(replies.SS_ACTION):
        action = reply_id[len(replies.SS_ACTION) :]
        if action not in INTENT_BY_ACTION:
            return stale
        if not state.identified:
            return _start(conversation, state, action, cpf=None)
        return _with_contract(state, action, reuse_selection=True)
    if not state.identified:
        return stale
    if reply_id.startswith(replies.SS_CONTRACT):
        index = _index(reply_id, replies.SS_CONTRACT, len(state.contract_refs))
        if state.awaiting != ConversationContract.Awaiting.CONTRACT or index is None:
            return stale
        isp.identity_select(state=state, ref=state.contract_refs[index])
        return _execute(state, action, state.selected_ref)
    if reply_id.startswith(replies.SS_WINDOW):
        index = _index(reply_id, replies.SS_WINDOW, len(state.offered))
        if state.awaiting != ConversationContract.Awaiting.WINDOW or index is None:
            return stale
        return _book(state, state.offered[index])
    if reply_id == replies.SS_UNLOCK_YES:
        if state.awaiting != ConversationContract.Awaiting.UNLOCK or not state.selected_ref:
            return stale
        return _unlock(conversation, state, state.selected_ref)
    return stale


def _index(reply_id: str, prefix: str, size: int) -> int | None:
    raw = reply_id[len(prefix) :]
    if not raw.isdigit() or int(raw) >= size:
        return None
    return int(raw)


def _with_contract(state: ConversationContract, action: str, *, reuse_selection: bool) -> Turn:
    refs = state.contract_refs
    if len(refs) == 1:
        isp.identity_select(state=state, ref=refs[0])
        return _execute(state, action, refs[0])
    if reuse_selection and state.selected_ref in refs:
        return _execute(state, action, state.selected_ref)
    adapter = get_adapter()
    rows = []
    for i, ref in enumerate(refs):
        contract = adapter.contract(ref)
        place = (
            ", ".join(x for x in (contract.region.neighbourhood, contract.region.city) if x)
            if contract
            else ""
        )
        status = _("bloqueado") if contract and contract.status == "blocked" else ""
        plan = contract.plan.name if contract else ""
        description = " · ".join(x for x in (plan, place, status) if x)
        rows.append(
            (f"{replies.SS_CONTRACT}{i}", _("Contrato %(ref)s") % {"ref": ref}, description)
        )
    isp.identity_await(state=state, awaiting="contract", action=action)
    pair = replies.choice_list(
        body=_("Encontrei %(n)d contratos. De qual deles você está falando?") % {"n": len(refs)},
        button=_("Escolher contrato"),
        section=_("Seus contratos"),
        rows=rows,
    )
    return Turn("choose_contract", INTENT_BY_ACTION[action], [_interactive(pair)])


def _execute(state: ConversationContract, action: str, ref: str) -> Turn:
    contract = get_adapter().contract(ref)
    if contract is None:
        raise ErpConflict("unknown_contract")
    if action == "bill":
        return _bill(state, contract)
    if action == "unlock":
        return _unlock_offer(state, contract)
    if action == "status":
        return _status(state, contract)
    if action == "visit":
        return _visit_windows(state, contract)
    return _plan(state, contract)


# --- the five services ----------------------------------------------------------------------------


def _bill(state: ConversationContract, contract: erp.Contract) -> Turn:
    adapter = get_adapter()
    invoices = adapter.open_invoices(contract.ref)
    isp.identity_done(state=state)
    if not invoices:
        body = _("O contrato %(ref)s não tem faturas em aberto. Está tudo em dia! ✅") % {
            "ref": contract.ref
        }
        return Turn(
            "bill_none", "billing", [_interactive(replies.resolved_buttons(body))], answered=True
        )
    invoice = invoices[0]
    today = timezone.localdate()
    lines = [
        _("Segunda via do contrato %(ref)s — fatura de %(month)s:")
        % {"ref": contract.ref, "month": fmt.month_year(invoice.reference_month)},
        _("Valor: %(amount)s") % {"amount": fmt.brl(invoice.amount)},
        _("Vencimento: %(due)s%(late)s")
        % {
            "due": fmt.day(invoice.due_date),
            "late": _(" (vencida)") if invoice.is_overdue(today) else "",
        },
    ]
    if len(invoices) > 1:
        lines.append(
            _("Há mais %(n)d fatura(s) em aberto: para negociar, fale com um atendente.")
            % {"n": len(invoices) - 1}
        )
    lines.append(_("A seguir, o código PIX copia e cola e a linha digitável do boleto."))
    summary = "\n".join(lines)
    # Four messages at most (Meta's pair limit allows a burst of about five): the PDF with the
    # summary as its caption, then each code alone so a long press copies exactly the code.
    try:
        pdf = adapter.invoice_pdf(contract.ref, invoice.id)
    except ErpError as exc:
        # The codes let the customer pay: a missing PDF is not worth a hand-off.
        logger.warning("bot: bill PDF unavailable", extra={"reason": exc.reason})
        out = [_text(summary)]
    else:
        filename = f"fatura-{invoice.id}.pdf".replace("/", "-")
        out = [Reply("document", summary, document=(filename, pdf))]
    if invoice.pix_code:
        out.append(_text(invoice.pix_code))
    if invoice.digitable_line:
        out.append(_text(invoice.digitable_line))
    out.append(_interactive(replies.resolved_buttons(_("Pronto, essa é a sua 2ª via."))))
    return Turn("bill_sent", "billing", out, answered=True)


def _unlock_offer(state: ConversationContract, contract: erp.Contract) -> Turn:
    if contract.status != "blocked":
        isp.identity_done(state=state)
        body = _("O contrato %(ref)s está ativo, sem bloqueio por falta de pagamento.") % {
            "ref": contract.ref
        }
        return Turn(
            "unlock_not_blocked",
            "payment_confirmation",
            [_interactive(replies.resolved_buttons(body))],
            answered=True,
        )
    refusal = isp.trust_unlock_check(ref=contract.ref)
    if refusal is not None:
        isp.identity_done(state=state)
        return _unlock_refused(contract, refusal)
    days, interval = isp.trust_unlock_policy()
    isp.identity_await(state=state, awaiting="unlock", action="unlock")
    body = _(
        "O contrato %(ref)s está bloqueado por falta de pagamento. Posso liberar sua internet "
        "por %(days)d dias em confiança, enquanto o pagamento é feito. O desbloqueio em "
        "confiança pode ser usado uma vez a cada %(interval)d dias. Liberar agora?"
    ) % {"ref": contract.ref, "days": days, "interval": interval}
    pair = replies.buttons(
        body,
        [
            (replies.SS_UNLOCK_YES, _("Liberar agora")),
            (f"{replies.SS_ACTION}bill", _("Enviar 2ª via")),
            (replies.HUMAN, _("Falar com atendente")),
        ],
    )
    return Turn("unlock_offered", "payment_confirmation", [_interactive(pair)])


def _unlock_refused(contract: erp.Contract, outcome: isp.UnlockOutcome) -> Turn:
    if outcome.outcome == "refused_policy" and outcome.last_at and outcome.next_at:
        body = _(
            "O desbloqueio em confiança do contrato %(ref)s já foi usado em %(last)s e só pode "
            "ser usado de novo a partir de %(next)s. Para liberar a internet antes, pague a "
            "fatura em aberto: envio a 2ª via?"
        ) % {
            "ref": contract.ref,
            "last": fmt.day(outcome.last_at),
            "next": fmt.day(outcome.next_at),
        }
    else:
        body = _(
            "Não foi possível liberar o contrato %(ref)s em confiança automaticamente. Para "
            "liberar a internet, pague a fatura em aberto: envio a 2ª via?"
        ) % {"ref": contract.ref}
    pair = replies.buttons(
        body,
        [
            (f"{replies.SS_ACTION}bill", _("Enviar 2ª via")),
            (replies.HUMAN, _("Falar com atendente")),
        ],
    )
    return Turn("unlock_refused", "payment_confirmation", [_interactive(pair)])


def _unlock(conversation: Conversation, state: ConversationContract, ref: str) -> Turn:
    contract = get_adapter().contract(ref)
    if contract is None:
        raise ErpConflict("unknown_contract")
    outcome = isp.trust_unlock_request(conversation=conversation, contract=contract)
    isp.identity_done(state=state)
    if outcome.outcome == "granted" and outcome.until:
        body = _(
            "Pronto! A internet do contrato %(ref)s está liberada em confiança até %(until)s. "
            "Pode levar alguns minutos para voltar; se não voltar, desligue e ligue o aparelho. "
            "Pague a fatura até lá para não ser bloqueado de novo."
        ) % {"ref": ref, "until": fmt.day_and_time(outcome.until)}
        pair = replies.resolved_buttons(
            body, extra=(f"{replies.SS_ACTION}bill", _("Enviar 2ª via"))
        )
        return Turn("unlock_granted", "payment_confirmation", [_interactive(pair)], answered=True)
    if outcome.outcome == "not_blocked":
        return _unlock_offer(state, contract)
    return _unlock_refused(contract, outcome)


def _status(state: ConversationContract, contract: erp.Contract) -> Turn:
    status = get_adapter().connection_status(contract.ref)
    if status.state == "blocked":
        return _unlock_offer(state, contract)
    isp.identity_done(state=state)
    since = fmt.day_and_time(status.since) if status.since else ""
    if status.state == "online":
        body = (
            _("Sua conexão (contrato %(ref)s) está online desde %(since)s.")
            if since
            else _("Sua conexão (contrato %(ref)s) está online.")
        ) % {"ref": contract.ref, "since": since}
        body += " " + _(
            "Se a internet está lenta ou caindo no Wi-Fi, teste perto do roteador ou pelo cabo."
        )
        return Turn(
            "status_online",
            "no_connection",
            [_interactive(replies.resolved_buttons(body))],
            answered=True,
        )
    if status.state == "offline":
        body = (
            _("O equipamento do contrato %(ref)s está offline desde %(since)s.")
            if since
            else _("O equipamento do contrato %(ref)s está offline.")
        ) % {"ref": contract.ref, "since": since}
        body += " " + _(
            "Confira se a ONU (o aparelho da fibra) está ligada na tomada e desligue e ligue de "
            "novo. Se a luz LOS estiver vermelha, é preciso uma visita técnica."
        )
        pair = replies.resolved_buttons(
            body, extra=(f"{replies.SS_ACTION}visit", _("Agendar visita"))
        )
        return Turn("status_offline", "no_connection", [_interactive(pair)], answered=True)
    body = _("Não consegui ver agora a situação da conexão do contrato %(ref)s.") % {
        "ref": contract.ref
    }
    return Turn(
        "status_unknown",
        "no_connection",
        [_interactive(replies.resolved_buttons(body))],
        answered=True,
    )


def _visit_windows(
    state: ConversationContract, contract: erp.Contract, *, again: bool = False
) -> Turn:
    windows = isp.visit_windows(ref=contract.ref)
    if not windows:
        isp.identity_done(state=state)
        return Turn(
            "visit_no_window",
            "technical_visit",
            [_text(_("Não há horários livres para visita técnica nos próximos dias."))],
            escalate="no_grounded_answer",
        )
    isp.identity_await(
        state=state, awaiting="window", action="visit", offered=[w.id for w in windows]
    )
    intro = (
        _("Esse horário acabou de ser preenchido. Escolha outro:")
        if again
        else _("Vamos agendar a visita técnica do contrato %(ref)s. Escolha um horário:")
        % {"ref": contract.ref}
    )
    rows = [
        (
            f"{replies.SS_WINDOW}{i}",
            fmt.window_label(w.starts_at, w.ends_at),
            _("Técnico entre %(start)s e %(end)s")
            % {"start": fmt.hour(w.starts_at), "end": fmt.hour(w.ends_at)},
        )
        for i, w in enumerate(windows)
    ]
    pair = replies.choice_list(
        body=intro, button=_("Ver horários"), section=_("Horários livres"), rows=rows
    )
    return Turn("visit_windows", "technical_visit", [_interactive(pair)])


def _book(state: ConversationContract, window_id: str) -> Turn:
    ref = state.selected_ref
    try:
        order = isp.visit_book(ref=ref, window_id=window_id)
    except ErpConflict as exc:
        if exc.reason != "window_unavailable":
            raise
        contract = get_adapter().contract(ref)
        if contract is None:
            raise ErpConflict("unknown_contract") from exc
        return _visit_windows(state, contract, again=True)
    isp.identity_done(state=state)
    body = _(
        "Visita técnica agendada para %(when)s, no endereço do contrato %(ref)s. "
        "Ordem de serviço: %(number)s. Alguém maior de idade precisa estar no local."
    ) % {
        "when": fmt.window_sentence(order.window.starts_at, order.window.ends_at),
        "ref": ref,
        "number": order.number,
    }
    return Turn(
        "visit_booked",
        "technical_visit",
        [_interactive(replies.resolved_buttons(body))],
        answered=True,
    )


def _plan(state: ConversationContract, contract: erp.Contract) -> Turn:
    isp.identity_done(state=state)
    plan = contract.plan
    statuses = {
        "active": _("ativo"),
        "blocked": _("bloqueado por falta de pagamento"),
        "cancelled": _("cancelado"),
    }
    place = ", ".join(x for x in (contract.region.neighbourhood, contract.region.city) if x)
    body = _(
        "Contrato %(ref)s: plano %(plan)s, com %(down)d Mega de download e %(up)d Mega de "
        "upload, por %(price)s por mês. Situação: %(status)s.%(place)s Para mudar de plano, "
        "fale com um atendente."
    ) % {
        "ref": contract.ref,
        "plan": plan.name,
        "down": plan.download_mbps,
        "up": plan.upload_mbps,
        "price": fmt.brl(plan.monthly_price),
        "status": statuses.get(contract.status, contract.status),
        "place": (" " + _("Instalação em %(place)s.") % {"place": place}) if place else "",
    }
    return Turn(
        "plan_info", "plan_change", [_interactive(replies.resolved_buttons(body))], answered=True
    )

"""The bot's writes: decide one inbound message and apply the decision.

``bot_handle_inbound`` is the one entry point (called by the Celery task). It is idempotent:
a message that already has a ``BotDecision`` is left alone, and the decision, the replies
(outbox), the escalation and the events are written in one transaction under the conversation's
row lock, so a duplicate delivery writes nothing and two messages of one conversation are
decided one after the other.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from bot import ai, replies, selectors, selfservice
from bot import outage as outage_turns
from bot.analysis import Analysis, analyse
from bot.models import BotDecision
from bot.policy import (
    REQUEST_KINDS,
    SMALL_TALK_INTENTS,
    Context,
    Outcome,
    PolicySnapshot,
    confirmation_of,
    decide,
    escalation,
)
from conversations.models import Conversation, ConversationEvent, Message
from conversations.services import (
    MediaInfo,
    ServiceError,
    conversation_bump_bot_attempts,
    conversation_classify_by_bot,
    conversation_close,
    conversation_escalate,
    conversation_record_bot_decision,
    message_record_outbound,
)
from isp import outages as isp_outages
from isp.cpf import find_cpf_candidate

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class HandleResult:
    """What happened to one message: ``status`` is decided, duplicate, not_with_bot, missing or
    not_inbound; ``decision`` is the stored decision when one was made now."""

    status: str
    decision: BotDecision | None = None


def message_deadline(*, message: Message, budget_s: float) -> float:
    """Seconds left of the decision's time budget, counted from the customer's message."""
    deadline = message.created_at + timedelta(seconds=budget_s)
    return (deadline - timezone.now()).total_seconds()


def bot_handle_inbound(*, message_id: int, model_failed: bool = False) -> HandleResult:
    """Decide and apply the bot's answer to inbound message ``message_id``.

    Raises ``bot.analysis.ModelBusy`` when Gemini failed transiently (nothing written); the
    caller retries later or calls again with ``model_failed=True``.
    """
    started = time.perf_counter()
    message = Message.objects.select_related("conversation").filter(pk=message_id).first()
    if message is None:
        return HandleResult("missing")
    if message.direction != Message.Direction.INBOUND:
        return HandleResult("not_inbound")
    if selectors.decision_for_message(message_id=message.pk) is not None:
        return HandleResult("duplicate")
    conversation = message.conversation
    if conversation.state != Conversation.State.BOT:
        return HandleResult("not_with_bot")

    snapshot = selectors.policy_snapshot_cached()
    # Only the model path needs the context before the lock (history to send, and whether a
    # short "sim" makes the call pointless); the rules read nothing more.
    awaiting, history, use_model = False, [], True
    if ai.is_configured():
        last = selectors.conversation_last_decision(conversation=conversation)
        awaiting = _awaiting_confirmation(last)
        history = selectors.conversation_recent_turns(conversation=conversation, before=message)
        # A CPF the bot asked for is checked locally: the model has nothing to add to it.
        use_model = not (
            find_cpf_candidate(message.text) and selfservice.awaiting_cpf(conversation=conversation)
        )
    analysis = analyse(
        message=message,
        snapshot=snapshot,
        history=history,
        remaining_s=message_deadline(
            message=message, budget_s=snapshot.thresholds.latency_budget_s
        ),
        awaiting_confirmation=awaiting,
        model_failed=model_failed,
        use_model=use_model,
    )
    try:
        with transaction.atomic():
            return _decide_and_apply(message, snapshot, analysis, started)
    except IntegrityError:
        # A concurrent delivery of the same message won the race (unique message_id).
        if selectors.decision_for_message(message_id=message.pk) is not None:
            return HandleResult("duplicate")
        raise


def _awaiting_confirmation(last: BotDecision | None) -> bool:
    """Did the bot's last turn end with "Isso resolveu?" (a knowledge-base answer, or a
    self-service answer such as the bill or the visit booked)?"""
    if last is None:
        return False
    if last.action == BotDecision.Action.SELF_SERVICE:
        return last.rule in selfservice.CONFIRMING_RULES
    return last.action == BotDecision.Action.ANSWERED


def _decide_and_apply(
    message: Message, snapshot: PolicySnapshot, analysis: Analysis, started: float
) -> HandleResult:
    conversation = Conversation.objects.select_for_update().get(pk=message.conversation_id)
    if conversation.state != Conversation.State.BOT:
        return HandleResult("not_with_bot")
    if BotDecision.objects.filter(message_id=message.pk).exists():
        return HandleResult("duplicate")

    last = selectors.conversation_last_decision(conversation=conversation)
    # The bot greets in its first decision of a conversation, so no decision = not greeted yet.
    first_contact = last is None
    awaiting = _awaiting_confirmation(last)
    confirmation = analysis.confirmation
    if confirmation is None and awaiting and analysis.normalized:
        confirmation = confirmation_of(analysis.normalized)

    if confirmation and awaiting and last.intent and analysis.triage.intent in SMALL_TALK_INTENTS:
        # "Sim"/"Não" answer the previous question: they carry its intent (and so its team).
        analysis.triage = replace(analysis.triage, intent=last.intent)

    outcome: Outcome | None = None
    outage_turn: outage_turns.OutageTurn | None = None
    if not analysis.ignore:
        self_service_intents = selfservice.eligible_intents(
            conversation=conversation, intent=analysis.triage.intent
        )
        identity_turn = selfservice.is_identity_turn(conversation=conversation, analysis=analysis)
        if not identity_turn:
            outage_turn = outage_turns.check(
                conversation=conversation, intent=analysis.triage.intent
            )
        context = Context(
            bot_turns=conversation.bot_attempts,
            awaiting_confirmation=awaiting,
            injection=analysis.injection,
            contested=analysis.contested,
            model_failed=analysis.model_failed,
            model_no_answer=analysis.model_no_answer,
            media_needs_human=analysis.media_needs_human,
            confirmation=confirmation,
            self_service_intents=self_service_intents,
            identity_turn=identity_turn,
            outage=outage_turn is not None,
        )
        outcome = decide(snapshot, analysis.triage, context, analysis.normalized)
    if outcome is not None and outcome.action == "closed" and not awaiting:
        outcome = None  # a stray "Sim" button with nothing to confirm

    if first_contact:
        body, interactive = replies.greeting(
            isp_name=settings.ISP_NAME,
            protocol=conversation.protocol,
            opened_at=conversation.opened_at,
            policy_url=settings.PRIVACY_POLICY_URL,
            dpo_email=settings.DPO_EMAIL,
        )
        _send(conversation, type="interactive", text=body, payload={"interactive": interactive})

    if outcome is None or (outcome.action == "clarified" and first_contact):
        action = BotDecision.Action.GREETED if first_contact else BotDecision.Action.IGNORED
        rule = "first_contact" if first_contact else "nothing_to_answer"
        decision = _record(
            conversation, message, analysis, None, action, rule, first_contact, started
        )
        return HandleResult("decided", decision)

    if outcome.action == "self_service":
        return _apply_self_service(
            conversation, message, snapshot, analysis, first_contact, started
        )
    if outcome.action == "outage" and outage_turn is not None:
        decision = _record(
            conversation,
            message,
            analysis,
            None,
            BotDecision.Action.CLOSED,
            outcome.rule,
            first_contact,
            started,
        )
        _apply_outage(conversation, outage_turn)
        return HandleResult("decided", decision)

    team = selectors.team_by_slug(outcome.team_slug) if outcome.escalates else None
    decision = _record(
        conversation,
        message,
        analysis,
        outcome,
        outcome.action,
        outcome.rule,
        first_contact,
        started,
    )
    if outcome.action == "answered":
        body, interactive = replies.answer_with_confirmation(outcome.answer)
        _send(conversation, type="interactive", text=body, payload={"interactive": interactive})
        conversation_bump_bot_attempts(conversation=conversation)
    elif outcome.action == "clarified":
        body, interactive = replies.clarify(intent=analysis.triage.intent)
        _send(conversation, type="interactive", text=body, payload={"interactive": interactive})
        conversation_bump_bot_attempts(conversation=conversation)
    elif outcome.action == "closed":
        closing = replies.closing(
            protocol=conversation.protocol,
            opened_at=conversation.opened_at,
            closed_at=timezone.now(),
        )
        _send(conversation, type="text", text=closing)
        conversation_close(
            conversation=conversation,
            resolution=Conversation.Resolution.RESOLVED_BY_BOT,
            request_csat=True,
        )
    elif outcome.action == "escalated":
        if outcome.answer:
            _send(conversation, type="text", text=outcome.answer)
        _hand_off(conversation, decision, outcome, analysis, team)
    return HandleResult("decided", decision)


def _classify(conversation: Conversation, intent: str) -> None:
    """The Anatel kind of the demand follows the subject the bot recognised (it sets the
    deadline); small talk and "falar com atendente" say nothing about it and change nothing."""
    kind = REQUEST_KINDS.get(intent)
    if kind:
        conversation_classify_by_bot(conversation=conversation, request_kind=kind)


def _hand_off(
    conversation: Conversation,
    decision: BotDecision,
    outcome: Outcome,
    analysis: Analysis,
    team: Any,
) -> None:
    text = replies.hand_off(
        reason=outcome.reason,
        protocol=conversation.protocol,
        team_name=team.name if team else "",
        media_type=analysis.media_type,
    )
    _send(conversation, type="text", text=text)
    data: dict[str, Any] = {
        "decision_id": decision.pk,
        "intent": decision.intent,
        "rule": outcome.rule,
    }
    if analysis.note:
        data["note"] = analysis.note
    conversation_escalate(
        conversation=conversation,
        reason=f"bot:{outcome.reason}",
        team=team,
        priority=outcome.priority,
        data=data,
    )


def _apply_outage(conversation: Conversation, turn: outage_turns.OutageTurn) -> None:
    """Answer with the outage, attach the conversation to it and close it as resolved by the
    bot, without a survey (``bot/outage.py`` says why)."""
    body, interactive = outage_turns.answer(turn, protocol=conversation.protocol)
    _send(conversation, type="interactive", text=body, payload={"interactive": interactive})
    isp_outages.outage_attach(
        outage=turn.outage, conversation=conversation, contract_ref=turn.contract_ref
    )
    conversation_close(
        conversation=conversation,
        resolution=Conversation.Resolution.RESOLVED_BY_BOT,
        note=str(_("Falha conhecida na região: o cliente será avisado quando normalizar.")),
    )


def _apply_self_service(
    conversation: Conversation,
    message: Message,
    snapshot: PolicySnapshot,
    analysis: Analysis,
    first_contact: bool,
    started: float,
) -> HandleResult:
    """Run one self-service turn with the ERP and queue its replies (or hand off)."""
    turn = selfservice.run(conversation=conversation, analysis=analysis)
    analysis.triage = replace(analysis.triage, intent=turn.intent)
    if turn.escalate:
        outcome = replace(escalation(snapshot, turn.escalate, turn.intent), rule=turn.rule)
        team = selectors.team_by_slug(outcome.team_slug)
        decision = _record(
            conversation,
            message,
            analysis,
            outcome,
            BotDecision.Action.ESCALATED,
            turn.rule,
            first_contact,
            started,
        )
        _send_replies(conversation, turn)
        _hand_off(conversation, decision, outcome, analysis, team)
        return HandleResult("decided", decision)
    decision = _record(
        conversation,
        message,
        analysis,
        None,
        BotDecision.Action.SELF_SERVICE,
        turn.rule,
        first_contact,
        started,
    )
    _send_replies(conversation, turn)
    if turn.answered:
        conversation_bump_bot_attempts(conversation=conversation)
    return HandleResult("decided", decision)


def _send_replies(conversation: Conversation, turn: selfservice.Turn) -> None:
    for reply in turn.replies:
        if reply.document is not None:
            filename, data = reply.document
            _send(
                conversation,
                type="document",
                text=reply.text,
                media=MediaInfo(mime_type="application/pdf", filename=filename, size=len(data)),
                media_file=ContentFile(data, name=filename),
            )
        else:
            _send(conversation, type=reply.type, text=reply.text, payload=reply.payload)


def _send(
    conversation: Conversation,
    *,
    type: str,
    text: str,
    payload: dict | None = None,
    media: MediaInfo | None = None,
    media_file: Any | None = None,
) -> None:
    """Queue one bot reply; a closed 24-hour window loses the reply, never the decision."""
    try:
        message_record_outbound(
            conversation=conversation,
            sender_kind="bot",
            type=type,
            text=text,
            payload=payload,
            media=media,
            media_file=media_file,
        )
    except ServiceError as exc:
        logger.warning(
            "bot: reply not queued",
            extra={"conversation_id": conversation.pk, "error": exc.code},
        )


def _record(
    conversation: Conversation,
    message: Message,
    analysis: Analysis,
    outcome: Outcome | None,
    action: str,
    rule: str,
    greeted: bool,
    started: float,
) -> BotDecision:
    triage = analysis.triage
    spoke = not analysis.ignore and not (analysis.media_needs_human and triage.engine == "none")
    decision = BotDecision.objects.create(
        message=message,
        conversation=conversation,
        action=action,
        rule=rule,
        greeted=greeted,
        intent=triage.intent if spoke else "",
        sentiment=triage.sentiment if spoke else "",
        sentiment_score=triage.sentiment_score if spoke else None,
        confidence=triage.confidence if spoke else None,
        matched=list(analysis.matched or triage.matched),
        engine=triage.engine,
        fallback_reason=analysis.fallback_reason,
        model=analysis.model,
        prompt_version=analysis.prompt_version,
        model_calls=analysis.model_calls,
        model_latency_ms=analysis.model_latency_ms,
        latency_ms=(time.perf_counter() - started) * 1000,
        prompt_tokens=analysis.prompt_tokens,
        output_tokens=analysis.output_tokens,
        knowledge_entry_id=outcome.kb.id if outcome and outcome.kb else None,
        answer_adapted=bool(outcome and outcome.adapted),
        escalated=bool(outcome and outcome.escalates),
        escalation_reason=outcome.reason if outcome else "",
        team_slug=outcome.team_slug if outcome and outcome.escalates else "",
        transcript=analysis.transcript,
    )
    bot_decision_record_event(decision=decision, note=analysis.note)
    _classify(conversation, decision.intent)
    return decision


def bot_policy_invalidate() -> None:
    """Drop the cached policy snapshot: the next decision reads the rows again.

    Call after changing ``BotPolicy``, ``EscalationRule``, ``IntentRoute`` or
    ``KnowledgeEntry`` rows (admin does it on every save and delete).
    """
    cache.delete(selectors.SNAPSHOT_CACHE_KEY)


def bot_decision_record_event(*, decision: BotDecision, note: str = "") -> ConversationEvent:
    """The agents' view of a decision: a ``bot_decision`` event with figures, never text.

    Through the conversations service, so the line appears live on the console; call inside
    the decision's transaction.
    """
    data: dict[str, Any] = {
        "decision_id": decision.pk,
        "message_id": decision.message_id,
        "action": decision.action,
        "rule": decision.rule,
        "intent": decision.intent,
        "sentiment": decision.sentiment,
        "sentiment_score": decision.sentiment_score,
        "confidence": decision.confidence,
        "engine": decision.engine,
        "model": decision.model,
        "prompt_version": decision.prompt_version,
        "latency_ms": round(decision.latency_ms or 0.0, 1),
        "escalated": decision.escalated,
        "escalation_reason": decision.escalation_reason,
        "knowledge_entry_id": decision.knowledge_entry_id,
        "has_transcript": bool(decision.transcript),
    }
    if decision.fallback_reason:
        data["fallback_reason"] = decision.fallback_reason
    if note:
        data["note"] = note
    return conversation_record_bot_decision(
        conversation_id=decision.conversation_id, data=data, intent=_topic(decision)
    )


# Intents that say what a conversation is about only while nothing better is known.
_WEAK_TOPICS = frozenset({"other", "human"})


def _topic(decision: BotDecision) -> str:
    """The intent to keep on the conversation (the dashboard's volume by intent), or "".

    Greetings never say what a contact is about; "other" and "asked for a person" do only
    until a subject is known; a subject replaces any earlier one (the latest is what the
    conversation turned out to be about).
    """
    intent = decision.intent
    if not intent or intent == "greeting":
        return ""
    current = decision.conversation.intent
    if intent in _WEAK_TOPICS and current:
        return ""
    return intent

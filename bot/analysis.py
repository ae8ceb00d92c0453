"""Reading one inbound message: what it says (text, button, voice note, photo) and what it wants.

:func:`analyse` runs *before* the decision's transaction (it may call Gemini, which takes
seconds) and writes nothing. It masks personal data before anything leaves the machine, checks
for injection attempts locally (those never reach the model), and falls back to the rule-based
classifier whenever the model is not configured, the breaker is open or the quota is used up.

It raises :class:`ModelBusy` when the model failed transiently and a later retry might succeed;
the Celery task decides whether that retry fits the time budget, and otherwise calls again with
``model_failed=True`` (the rules decide and "model unavailable" applies).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from bot import ai, prompts
from bot.injection import injection_hits
from bot.masking import mask_pii
from bot.policy import PolicySnapshot, Triage, confirmation_of, is_contest
from bot.replies import MENU_INTENTS, RESOLVED_NO, RESOLVED_YES
from bot.rules import classify, normalize
from conversations.models import Message
from isp.cpf import find_cpf_candidate

logger = logging.getLogger(__name__)

HISTORY_TURNS = 3
_HISTORY_CHARS = 500
_TURN_CHARS = 2000
# Message types with nothing to answer: only a greeting if it is the first contact.
_IGNORED_TYPES = frozenset({"reaction", "sticker", "system", "order", "unsupported"})


class ModelBusy(Exception):
    """Gemini failed transiently; ``retry_after_s`` is the server's requested wait, if any."""

    def __init__(self, retry_after_s: float | None, kind: str) -> None:
        super().__init__(kind)
        self.retry_after_s = retry_after_s
        self.kind = kind


@dataclass
class Analysis:
    """Everything the policy needs about one turn, without the customer's words."""

    triage: Triage
    normalized: str = ""  # accent-free tokens for keyword and yes/no matching (stays local)
    injection: bool = False
    contested: bool = False
    model_failed: bool = False
    model_no_answer: bool = False
    media_needs_human: bool = False
    ignore: bool = False
    confirmation: str | None = None  # from the "Resolvido?" buttons
    media_type: str = ""
    transcript: str = ""
    note: str = ""  # why, for agents: a code, never customer text
    fallback_reason: str = ""
    model: str = ""
    prompt_version: str = ""
    model_calls: int = 0
    model_latency_ms: float | None = None
    prompt_tokens: int | None = None
    output_tokens: int | None = None
    matched: tuple[str, ...] = field(default_factory=tuple)
    # A self-service button or list row ("isp.…"): the id, checked by bot.selfservice.
    reply_id: str = ""
    # An 11-digit CPF-shaped run in the text (check digits not verified). Held in memory for the
    # identity check only: never stored, logged, or sent to the model.
    cpf: str | None = field(default=None, repr=False)

    def count_call(self, result: Any) -> None:
        self.model = result.model
        self.model_calls += 1
        self.model_latency_ms = (self.model_latency_ms or 0.0) + result.latency_ms
        if result.prompt_tokens is not None:
            self.prompt_tokens = (self.prompt_tokens or 0) + result.prompt_tokens
        if result.output_tokens is not None:
            self.output_tokens = (self.output_tokens or 0) + result.output_tokens


SELF_SERVICE_PREFIX = "isp."


def _reply_id(message: Message) -> tuple[str, str]:
    """(id, title) of a button/list reply or a template quick reply; ("", "") otherwise."""
    payload = message.payload if isinstance(message.payload, dict) else {}
    interactive = payload.get("interactive")
    if isinstance(interactive, dict):
        for key in ("button_reply", "list_reply"):
            reply = interactive.get(key)
            if isinstance(reply, dict):
                return str(reply.get("id") or ""), str(reply.get("title") or "")
    button = payload.get("button")
    if isinstance(button, dict):
        return str(button.get("payload") or ""), str(button.get("text") or "")
    return "", ""


def _rules_triage(text: str) -> Triage:
    result = classify(text)
    return Triage(
        intent=result.intent,
        sentiment=result.sentiment,
        sentiment_score=result.sentiment_score,
        confidence=result.confidence,
        engine="rules",
        matched=result.matched,
    )


def _read_media(message: Message) -> bytes | None:
    if not message.media_file:
        return None
    try:
        with message.media_file.open("rb") as handle:
            return handle.read()
    except (FileNotFoundError, OSError):
        logger.warning("bot: media file unreadable", extra={"message_id": message.pk})
        return None


def analyse(
    *,
    message: Message,
    snapshot: PolicySnapshot,
    history: list[tuple[str, str]],
    remaining_s: float,
    awaiting_confirmation: bool,
    model_failed: bool = False,
    use_model: bool = True,
) -> Analysis:
    """Analyse ``message`` (see the module docstring). ``history`` is raw; it is masked here.

    ``use_model=False`` keeps the text away from the model (a CPF the bot asked for).
    """
    reply_id, reply_title = _reply_id(message)
    if reply_id.startswith(SELF_SERVICE_PREFIX):
        return Analysis(triage=Triage(intent="other", engine="menu"), reply_id=reply_id)
    if reply_id in MENU_INTENTS:
        return Analysis(triage=Triage(intent=MENU_INTENTS[reply_id], engine="menu"))
    if reply_id in (RESOLVED_YES, RESOLVED_NO):
        return Analysis(
            triage=Triage(intent="other", engine="menu"),
            confirmation="yes" if reply_id == RESOLVED_YES else "no",
        )

    analysis = Analysis(triage=Triage(intent="other", engine="none"))
    message_type = message.type
    if message_type in ("audio", "image"):
        analysis.media_type = message_type
        if message_type == "image":
            return _analyse_photo(message, snapshot, analysis, remaining_s, model_failed)
        text = _transcribe(message, analysis, remaining_s, model_failed)
        if text is None:
            return analysis
    elif message_type in ("text", "interactive", "button"):
        text = message.text or reply_title
    elif message_type in _IGNORED_TYPES:
        analysis.ignore = True
        return analysis
    else:  # video, document, location, contacts: a person looks at them
        analysis.media_type = message_type
        analysis.media_needs_human = True
        analysis.note = f"{message_type}_needs_human"
        return analysis

    return analyse_text(
        text,
        snapshot=snapshot,
        history=history,
        remaining_s=remaining_s,
        awaiting_confirmation=awaiting_confirmation,
        model_failed=model_failed,
        use_model=use_model,
        analysis=analysis,
    )


def analyse_text(
    text: str,
    *,
    snapshot: PolicySnapshot,
    history: list[tuple[str, str]] | None = None,
    remaining_s: float | None = None,
    awaiting_confirmation: bool = False,
    model_failed: bool = False,
    use_model: bool = True,
    analysis: Analysis | None = None,
) -> Analysis:
    """Analyse one turn of text (typed, or a transcript); ``evaluate_bot`` calls it directly.

    ``use_model=False`` keeps the model out even when a key is configured (the rules decide).
    """
    analysis = analysis or Analysis(triage=Triage(intent="other", engine="none"))
    text = text[:_TURN_CHARS]
    analysis.cpf = find_cpf_candidate(text)
    analysis.normalized = normalize(text)
    rules = _rules_triage(text)
    analysis.triage = rules
    analysis.matched = rules.matched
    hits = injection_hits(text)
    if hits:
        # Never sent to the model: the pattern ids (not the text) go on the record.
        analysis.injection = True
        analysis.matched = rules.matched + tuple(f"injection:{hit}" for hit in hits)
        return analysis
    analysis.contested = is_contest(analysis.normalized)
    if analysis.contested or rules.intent in ("human", "cancellation"):
        return analysis  # a person at once: no need to ask the model anything
    if awaiting_confirmation and confirmation_of(analysis.normalized) is not None:
        return analysis
    if model_failed:
        analysis.model_failed = True
        analysis.fallback_reason = "model_error"
        return analysis
    if use_model:
        _model_triage(text, history or [], snapshot, analysis, remaining_s)
    return analysis


def _model_triage(
    text: str,
    history: list[tuple[str, str]],
    snapshot: PolicySnapshot,
    analysis: Analysis,
    remaining_s: float | None,
) -> None:
    if not ai.is_configured():
        return  # the embedded default: the rules decide, nothing to report
    masked_history = [(speaker, mask_pii(turn)[:_HISTORY_CHARS]) for speaker, turn in history]
    system = prompts.triage_system_instruction(isp_name=settings.ISP_NAME, entries=snapshot.kb)
    try:
        result = ai.triage(
            system_instruction=system,
            turn_text=mask_pii(text),
            history=masked_history[-HISTORY_TURNS:],
            remaining_s=remaining_s,
        )
    except ai.AIUnavailable as exc:
        analysis.fallback_reason = exc.reason
        return
    except ai.AIFailed as exc:
        if exc.retryable:
            raise ModelBusy(exc.retry_after_s, exc.kind) from exc
        analysis.model_failed = True
        analysis.fallback_reason = f"model_{exc.kind}"
        return
    analysis.count_call(result)
    analysis.prompt_version = prompts.TRIAGE_PROMPT_VERSION
    output = result.output
    if output is None:
        analysis.model_no_answer = True
        analysis.note = (
            f"model_blocked_{result.block_reason.lower()}"
            if result.block_reason
            else "model_bad_output"
        )
        return
    analysis.triage = Triage(
        intent=output.intent,
        sentiment=output.sentiment,
        sentiment_score=output.sentiment_score,
        confidence=output.confidence,
        engine="gemini",
        matched=analysis.triage.matched,
        kb_slug=output.kb_entry_id,
        adapted_answer=output.answer,
    )


def _transcribe(
    message: Message, analysis: Analysis, remaining_s: float, model_failed: bool
) -> str | None:
    """The voice note's text, or None after setting why a person must listen to it."""
    analysis.media_needs_human = True  # until a transcript says otherwise
    if not ai.is_configured():
        analysis.note = "audio_without_ai"
        return None
    if model_failed:
        analysis.note = "audio_ai_failed"
        analysis.fallback_reason = "model_error"
        return None
    data = _read_media(message)
    if data is None:
        analysis.note = "audio_file_missing"
        return None
    try:
        result = ai.transcribe(
            data=data, mime_type=message.media_mime_type or "audio/ogg", remaining_s=remaining_s
        )
    except ai.AIUnavailable as exc:
        analysis.note = f"audio_ai_{exc.reason}"
        analysis.fallback_reason = exc.reason
        return None
    except ai.AIFailed as exc:
        if exc.retryable:
            raise ModelBusy(exc.retry_after_s, exc.kind) from exc
        analysis.note = "audio_ai_failed"
        return None
    analysis.count_call(result)
    if not result.text:
        analysis.note = "audio_unintelligible"
        return None
    analysis.media_needs_human = False
    analysis.transcript = result.text
    return result.text


def _analyse_photo(
    message: Message,
    snapshot: PolicySnapshot,
    analysis: Analysis,
    remaining_s: float,
    model_failed: bool,
) -> Analysis:
    analysis.media_needs_human = True  # until the photo maps to a diagnosis
    if not ai.is_configured():
        analysis.note = "image_without_ai"
        return analysis
    if model_failed:
        analysis.note = "image_ai_failed"
        analysis.fallback_reason = "model_error"
        return analysis
    data = _read_media(message)
    if data is None:
        analysis.note = "image_file_missing"
        return analysis
    try:
        result = ai.read_photo(
            data=data, mime_type=message.media_mime_type or "image/jpeg", remaining_s=remaining_s
        )
    except ai.AIUnavailable as exc:
        analysis.note = f"image_ai_{exc.reason}"
        analysis.fallback_reason = exc.reason
        return analysis
    except ai.AIFailed as exc:
        if exc.retryable:
            raise ModelBusy(exc.retry_after_s, exc.kind) from exc
        analysis.note = "image_ai_failed"
        return analysis
    analysis.count_call(result)
    output = result.output
    entry = snapshot.kb_for_diagnosis(output.diagnosis) if output is not None else None
    if output is None or entry is None:
        analysis.note = "image_not_understood"
        return analysis
    analysis.media_needs_human = False
    analysis.note = f"photo_{output.diagnosis}"
    intent = entry.intents[0] if entry.intents else "no_connection"
    analysis.triage = Triage(
        intent=intent,
        confidence=output.confidence,
        engine="gemini",
        matched=(f"photo:{output.diagnosis}",),
        kb_slug=entry.slug,
    )
    return analysis

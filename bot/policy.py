"""The bot's decision policy: pure functions over a snapshot of the configuration.

No Django models or I/O here, so the same code decides in the Celery task, in ``evaluate_bot``
and in the latency benchmark. ``bot.selectors.policy_snapshot`` builds the snapshot from the
admin-edited rows; ``bot.services`` applies the outcome (replies, escalation, records).

Order of the checks (first match wins), so that a customer's legal rights always come first:
injection → media nobody can read → contested the bot → asked for a human → cancellation → a
self-service step in progress (a CPF typed when one was asked, a contract/window/unlock button)
→ the customer's answer to "Isso resolveu?" → model unavailable or unusable this turn → a
known outage in the customer's region (no or slow connection: ``Context.outage``) → negative
sentiment → too many bot turns → self-service with the ISP's ERP (bill, trust unlock,
connection status, visit, plan: ``Context.self_service_intents``) → greeting/other (clarify
with the menu) → low confidence → knowledge-base answer (or "no grounded answer").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from bot.rules import normalize

REASONS = (
    "human_requested",
    "cancellation",
    "contested",
    "injection",
    "media_needs_human",
    "negative_sentiment",
    "low_confidence",
    "too_many_turns",
    "no_grounded_answer",
    "model_unavailable",
    "kb_hand_off",
    "erp_unavailable",
    "identity_failed",
)
MANDATORY_REASONS = frozenset(
    {"human_requested", "cancellation", "contested", "injection", "media_needs_human"}
)
# Intents the bot never answers from the knowledge base.
HUMAN_INTENTS = {"human": "human_requested", "cancellation": "cancellation"}
# Intents that say nothing actionable: the bot shows the menu instead of escalating.
SMALL_TALK_INTENTS = frozenset({"greeting", "other"})
# The Anatel/SAC kind of demand each intent reveals (conversations.Conversation.RequestKind,
# whose deadlines compliance computes): a failing service is a complaint, a bill or a visit a
# request, plan questions information. Small talk and "a person, please" say nothing about it.
REQUEST_KINDS: dict[str, str] = {
    "no_connection": "complaint",
    "slow_connection": "complaint",
    "billing": "request",
    "payment_confirmation": "request",
    "plan_change": "information",
    "technical_visit": "request",
    "cancellation": "cancellation",
}


@dataclass(frozen=True, slots=True)
class Thresholds:
    negative_sentiment: float = -0.85
    min_confidence: float = 0.3
    max_bot_turns: int = 4
    latency_budget_s: float = 10.0
    allow_adaptation: bool = True


@dataclass(frozen=True, slots=True)
class RuleConfig:
    enabled: bool = True
    team_slug: str = ""
    priority: int | None = None


@dataclass(frozen=True, slots=True)
class Route:
    team_slug: str = ""
    priority: int = 1


@dataclass(frozen=True, slots=True)
class KBItem:
    id: int
    slug: str
    title: str
    intents: tuple[str, ...]
    keywords: tuple[str, ...]  # normalised with bot.rules.normalize
    answer: str
    hand_off: bool = False
    diagnosis: str = ""
    position: int = 100


@dataclass(frozen=True)
class PolicySnapshot:
    thresholds: Thresholds
    rules: dict[str, RuleConfig]
    routes: dict[str, Route]
    default_team_slug: str
    kb: tuple[KBItem, ...]
    _by_slug: dict[str, KBItem] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_slug", {item.slug: item for item in self.kb})

    def rule(self, reason: str) -> RuleConfig:
        config = self.rules.get(reason, RuleConfig())
        if reason in MANDATORY_REASONS and not config.enabled:
            return RuleConfig(True, config.team_slug, config.priority)
        return config

    def target(self, reason: str, intent: str) -> tuple[str, int]:
        """(team slug, priority) for an escalation: the rule's, else the intent's, else default."""
        rule = self.rule(reason)
        route = self.routes.get(intent) or self.routes.get("other") or Route()
        team = rule.team_slug or route.team_slug or self.default_team_slug
        priority = rule.priority if rule.priority is not None else route.priority
        return team, priority

    def kb_by_slug(self, slug: str | None) -> KBItem | None:
        return self._by_slug.get(slug or "")

    def kb_for_diagnosis(self, diagnosis: str) -> KBItem | None:
        return next((item for item in self.kb if item.diagnosis == diagnosis), None)

    def kb_for(self, intent: str, normalized_text: str) -> KBItem | None:
        """The best active entry for ``intent``: most keyword hits, then position; an entry
        without keywords is the default. For small-talk intents only a keyword hit counts."""
        best: tuple[int, int] | None = None
        chosen: KBItem | None = None
        padded = f" {normalized_text} "
        for item in self.kb:
            if intent not in item.intents:
                continue
            hits = sum(1 for keyword in item.keywords if f" {keyword}" in padded)
            if item.keywords and hits == 0:
                continue  # a specialised entry whose words are absent
            if not item.keywords and intent in SMALL_TALK_INTENTS:
                continue
            key = (-hits, item.position)
            if best is None or key < best:
                best, chosen = key, item
        return chosen


@dataclass(frozen=True, slots=True)
class Triage:
    """What a classifier said about one turn (rules, Gemini or a menu choice)."""

    intent: str
    sentiment: str = "neutral"
    sentiment_score: float = 0.0
    confidence: float = 1.0
    engine: str = "rules"
    matched: tuple[str, ...] = ()
    kb_slug: str | None = None  # Gemini's pick, checked against the intent
    adapted_answer: str | None = None  # Gemini's adaptation, validated before use


@dataclass(frozen=True, slots=True)
class Context:
    bot_turns: int = 0
    awaiting_confirmation: bool = False
    injection: bool = False
    contested: bool = False
    model_failed: bool = False
    model_no_answer: bool = False  # the model answered with nothing usable (blocked, malformed)
    media_needs_human: bool = False
    confirmation: str | None = None  # "yes" / "no" when the turn answers "Resolvido?"
    # Intents the ERP can serve for this conversation now (bot.selfservice decides which).
    self_service_intents: frozenset[str] = frozenset()
    # The turn answers a self-service question (a CPF, a contract, a window, an unlock yes).
    identity_turn: bool = False
    # The customer's contract is in the region of an open outage and the turn is about no or
    # slow connection (bot.outage decides): the outage answers instead of a queue.
    outage: bool = False


@dataclass(frozen=True, slots=True)
class Outcome:
    action: str  # answered | clarified | escalated | closed | self_service | outage
    rule: str
    reason: str = ""  # escalation reason (EscalationRule.Reason)
    kb: KBItem | None = None
    answer: str = ""
    adapted: bool = False
    team_slug: str = ""
    priority: int | None = None

    @property
    def escalates(self) -> bool:
        return bool(self.reason)


def escalation(snapshot: PolicySnapshot, reason: str, intent: str, **extra) -> Outcome:
    """The outcome of handing the conversation to humans for ``reason`` (team, priority)."""
    team, priority = snapshot.target(reason, intent)
    return Outcome(
        action="escalated", rule=reason, reason=reason, team_slug=team, priority=priority, **extra
    )


_escalate = escalation


def decide(
    snapshot: PolicySnapshot, triage: Triage, context: Context, normalized_text: str = ""
) -> Outcome:
    """Decide what the bot does with one customer turn; see the module docstring for the order."""
    t = snapshot.thresholds
    intent = triage.intent
    if context.injection:
        return _escalate(snapshot, "injection", intent)
    if context.media_needs_human:
        return _escalate(snapshot, "media_needs_human", intent)
    if context.contested:
        return _escalate(snapshot, "contested", intent)
    if intent in HUMAN_INTENTS:
        return _escalate(snapshot, HUMAN_INTENTS[intent], intent)
    if context.identity_turn:
        return Outcome(action="self_service", rule="self_service_step")
    if context.awaiting_confirmation and context.confirmation == "yes":
        return Outcome(action="closed", rule="resolved_confirmed")
    if context.awaiting_confirmation and context.confirmation == "no":
        return _escalate(snapshot, "human_requested", intent)
    if context.model_failed and snapshot.rule("model_unavailable").enabled:
        return _escalate(snapshot, "model_unavailable", intent)
    if context.model_no_answer and snapshot.rule("no_grounded_answer").enabled:
        return _escalate(snapshot, "no_grounded_answer", intent)
    if context.outage:
        return Outcome(action="outage", rule="outage_known")
    if (
        triage.sentiment_score <= t.negative_sentiment
        and snapshot.rule("negative_sentiment").enabled
    ):
        return _escalate(snapshot, "negative_sentiment", intent)
    if context.bot_turns >= t.max_bot_turns and snapshot.rule("too_many_turns").enabled:
        return _escalate(snapshot, "too_many_turns", intent)
    if intent in context.self_service_intents:
        if triage.confidence < t.min_confidence and snapshot.rule("low_confidence").enabled:
            return _escalate(snapshot, "low_confidence", intent)
        return Outcome(action="self_service", rule=f"self_service_{intent}")

    entry = None
    if triage.kb_slug:
        candidate = snapshot.kb_by_slug(triage.kb_slug)
        if candidate is not None and intent in candidate.intents:
            entry = candidate
    if entry is None:
        entry = snapshot.kb_for(intent, normalized_text)

    if entry is None and intent in SMALL_TALK_INTENTS:
        return Outcome(action="clarified", rule=f"menu_for_{intent}")
    if triage.confidence < t.min_confidence and snapshot.rule("low_confidence").enabled:
        return _escalate(snapshot, "low_confidence", intent)
    if entry is None:
        if snapshot.rule("no_grounded_answer").enabled:
            return _escalate(snapshot, "no_grounded_answer", intent)
        return Outcome(action="clarified", rule="menu_no_answer")

    answer, adapted = entry.answer, False
    if (
        t.allow_adaptation
        and triage.adapted_answer
        and adaptation_is_safe(triage.adapted_answer, entry.answer)
    ):
        answer, adapted = triage.adapted_answer.strip(), True
    if entry.hand_off and snapshot.rule("kb_hand_off").enabled:
        return _escalate(snapshot, "kb_hand_off", intent, kb=entry, answer=answer, adapted=adapted)
    return Outcome(action="answered", rule="kb_answer", kb=entry, answer=answer, adapted=adapted)


# --- Validating the model's adaptation of a knowledge-base answer --------------------------------

_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_PLACEHOLDER = re.compile(r"\[[A-Z_]{3,}\]")
# Words that carry amounts, deadlines or promises; the adaptation may use one only when the
# entry does.
_SENSITIVE_WORDS = frozenset(
    """
    r$ reais centavos dolar dolares porcento
    desconto descontos gratis gratuito gratuita isencao isento isenta reembolso estorno
    credito creditos bonus brinde multa juros promocao oferta
    dois duas tres quatro cinco seis sete oito nove dez onze doze quinze vinte trinta
    quarenta cinquenta sessenta cem cento duzentos trezentos quinhentos mil
    horas minutos dias semanas meses anos
    hoje amanha imediatamente prazo garantia garantimos garanto
    terca quarta quinta sexta sabado domingo
    """.split()  # noqa: SIM905 - a word list reads better as text
)
_MAX_ADAPTATION_LENGTH = 900


def _numbers(text: str) -> set[str]:
    return {re.sub(r"[.,]", "", n) for n in _NUMBER.findall(text)}


def _words(text: str) -> set[str]:
    words = set(normalize(text.replace("%", " porcento ")).split())
    if "r$" in text.lower():
        words.add("r$")
    return words


def adaptation_is_safe(adapted: str, original: str) -> bool:
    """True when ``adapted`` adds no number, amount, deadline, link or promise to ``original``.

    Conservative on purpose: any new digit run, URL, masked-data token or sensitive word (money,
    discounts, spelled-out numbers, time units, weekdays) sends the original text instead.
    """
    adapted = adapted.strip()
    if not adapted or len(adapted) > _MAX_ADAPTATION_LENGTH:
        return False
    if _PLACEHOLDER.search(adapted):
        return False
    if not _numbers(adapted) <= _numbers(original):
        return False
    if not set(_URL.findall(adapted)) <= set(_URL.findall(original)):
        return False
    new_words = (_words(adapted) - _words(original)) & _SENSITIVE_WORDS
    return not new_words


# --- Reading short answers and contests ---------------------------------------------------------

_YES = re.compile(
    r"^ (?:sim|ss|s|isso|resolveu|resolvido|deu certo|funcionou|voltou|obrigad[oa]|valeu|"
    r"perfeito|otimo|beleza|show|ok)\b"
)
_NO = re.compile(r"^ (?:nao|ainda nao|continua|negativo)\b")
_BUT = re.compile(r" (?:mas|porem|ainda|continua|nao|so que) ")
_CONTEST = re.compile(
    r" nao (?:foi|era|e) (?:isso|isto|o que (?:eu )?(?:pedi|perguntei|queria))\b"
    r"| revis(?:ao|ar|e) (?:humana|por (?:um|uma) (?:humano|pessoa|atendente))"
    r"| (?:quero|peco|solicito|gostaria de) (?:uma )?revisao\b"
    r"| contest\w*"
    r"| nao concordo\b"
    r"| (?:voce|robo) (?:errou|entendeu errado)\b"
    r"| resposta errada\b"
)


def confirmation_of(normalized_text: str) -> str | None:
    """Return "yes" / "no" when the turn is a short answer to "Isso resolveu?", else None."""
    if len(normalized_text) > 60:
        return None
    if _NO.search(normalized_text):
        return "no"
    if _YES.search(normalized_text) and not _BUT.search(normalized_text):
        return "yes"
    return None


def is_contest(normalized_text: str) -> bool:
    """The customer disputes the bot's outcome or asks for a human review (LGPD Art. 20)."""
    return bool(_CONTEST.search(normalized_text))

"""Reads for the bot: its configuration snapshot, decisions and the recent conversation."""

from __future__ import annotations

from django.core.cache import cache
from django.db.models import QuerySet

from accounts.models import Team
from bot.models import BotDecision, BotPolicy, EscalationRule, IntentRoute, KnowledgeEntry
from bot.policy import KBItem, PolicySnapshot, Route, RuleConfig, Thresholds
from bot.rules import normalize
from conversations.models import Conversation, Message

SNAPSHOT_CACHE_KEY = "bot:policy-snapshot:v1"
SNAPSHOT_CACHE_SECONDS = 60


def policy_snapshot_cached() -> PolicySnapshot:
    """:func:`policy_snapshot` through the shared cache (one cache read instead of 4 queries).

    Admin saves drop the cached copy (``bot.services.bot_policy_invalidate``); anything else
    that changes the rows is picked up within ``SNAPSHOT_CACHE_SECONDS``.
    """
    snapshot = cache.get(SNAPSHOT_CACHE_KEY)
    if snapshot is None:
        snapshot = policy_snapshot()
        cache.set(SNAPSHOT_CACHE_KEY, snapshot, timeout=SNAPSHOT_CACHE_SECONDS)
    return snapshot


def policy_snapshot() -> PolicySnapshot:
    """The bot's configuration as plain values (4 queries). Defaults when nothing is stored."""
    policy = BotPolicy.objects.filter(pk=BotPolicy.SINGLETON_PK).first()
    if policy is None:
        return PolicySnapshot(
            thresholds=Thresholds(),
            rules={},
            routes={},
            default_team_slug="",
            kb=knowledge_items(),
        )
    thresholds = Thresholds(
        negative_sentiment=policy.negative_sentiment_threshold,
        min_confidence=policy.min_confidence,
        max_bot_turns=policy.max_bot_turns,
        latency_budget_s=policy.latency_budget_seconds,
        allow_adaptation=policy.allow_answer_adaptation,
    )
    rules = {
        rule.reason: RuleConfig(rule.enabled, rule.team_slug, rule.priority)
        for rule in EscalationRule.objects.filter(policy=policy)
    }
    routes = {
        route.intent: Route(route.team_slug, route.priority)
        for route in IntentRoute.objects.filter(policy=policy)
    }
    return PolicySnapshot(
        thresholds=thresholds,
        rules=rules,
        routes=routes,
        default_team_slug=policy.default_team_slug,
        kb=knowledge_items(),
    )


def latency_budget_seconds() -> float:
    value = (
        BotPolicy.objects.filter(pk=BotPolicy.SINGLETON_PK)
        .values_list("latency_budget_seconds", flat=True)
        .first()
    )
    return float(value) if value is not None else Thresholds().latency_budget_s


def knowledge_items() -> tuple[KBItem, ...]:
    """Active knowledge-base entries, in admin order, as plain values."""
    return tuple(
        KBItem(
            id=entry.pk,
            slug=entry.slug,
            title=entry.title,
            intents=tuple(entry.intents or ()),
            keywords=tuple(
                k for k in (normalize(str(word)).strip() for word in entry.keywords or ()) if k
            ),
            answer=entry.answer,
            hand_off=entry.hand_off,
            diagnosis=entry.diagnosis,
            position=entry.position,
        )
        for entry in KnowledgeEntry.objects.filter(is_active=True).order_by("position", "slug")
    )


def team_by_slug(slug: str) -> Team | None:
    if not slug:
        return None
    return Team.objects.filter(slug=slug, is_active=True).first()


def decision_for_message(*, message_id: int) -> BotDecision | None:
    return BotDecision.objects.filter(message_id=message_id).first()


def conversation_last_decision(*, conversation: Conversation) -> BotDecision | None:
    return (
        BotDecision.objects.filter(conversation=conversation)
        .order_by("-created_at", "-pk")
        .only("action", "rule", "intent", "knowledge_entry_id")
        .first()
    )


def conversation_recent_turns(
    *, conversation: Conversation, before: Message, limit: int = 4
) -> list[tuple[str, str]]:
    """The last ``limit`` text turns before ``before`` as ``(speaker, raw text)``, oldest first.

    Speaker is ``cliente`` or ``atendimento``; system lines and media without text are skipped.
    Raw text: the caller masks it before it leaves the machine.
    """
    rows = (
        Message.objects.filter(conversation=conversation, created_at__lte=before.created_at)
        .exclude(pk=before.pk)
        .exclude(text="")
        .exclude(sender_kind=Message.SenderKind.SYSTEM)
        .order_by("-created_at", "-pk")
        .values_list("direction", "text")[:limit]
    )
    turns = [
        ("cliente" if direction == Message.Direction.INBOUND else "atendimento", text)
        for direction, text in rows
    ]
    turns.reverse()
    return turns


def conversation_decisions(*, conversation: Conversation) -> QuerySet[BotDecision]:
    """A conversation's bot decisions, oldest first (for the agent's view)."""
    return (
        BotDecision.objects.filter(conversation=conversation)
        .select_related("knowledge_entry")
        .order_by("created_at", "pk")
    )

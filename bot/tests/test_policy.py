"""The decision policy's rules that a supervisor configures, and the answer-adaptation guard."""

from __future__ import annotations

import pytest

from bot import selectors
from bot.policy import (
    Context,
    Triage,
    adaptation_is_safe,
    confirmation_of,
    decide,
    is_contest,
)
from bot.rules import normalize

ENTRY = (
    "Você pode emitir a 2ª via do boleto na Central do Assinante, no menu Financeiro > "
    "Faturas. Desligue o roteador e aguarde 30 segundos."
)


@pytest.mark.parametrize(
    "adapted",
    [
        "Claro! A 2ª via do boleto está na Central do Assinante, em Financeiro > Faturas.",
        "Desligue o roteador, aguarde 30 segundos e ligue de novo.",
    ],
)
def test_adaptations_that_only_reword_are_accepted(adapted):
    assert adaptation_is_safe(adapted, ENTRY)


@pytest.mark.parametrize(
    "adapted",
    [
        "A fatura custa R$ 89,90 na Central do Assinante.",
        "Aguarde 45 segundos.",
        "Você tem 10% de desconto pagando hoje.",
        "Você ganha um desconto na 2ª via.",
        "A 2ª via chega em dois dias úteis.",
        "O técnico vai amanhã.",
        "Acesse www.exemplo.com/boleto.",
        "Seu CPF [CPF] já está cadastrado.",
        "",
        "x" * 1000,
    ],
)
def test_adaptations_adding_amounts_deadlines_links_or_data_are_refused(adapted):
    assert not adaptation_is_safe(adapted, ENTRY)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Sim", "yes"),
        ("sim, resolveu!", "yes"),
        ("obrigado", "yes"),
        ("não", "no"),
        ("n", "no"),
        ("ainda não", "no"),
        ("sim mas continua lenta", None),
        ("quero a segunda via do boleto de outubro também, por favor", None),
    ],
)
def test_short_answers_to_resolved_are_read(text, expected):
    assert confirmation_of(normalize(text)) == expected


@pytest.mark.parametrize(
    "text",
    ["não foi isso", "Não era isso que eu perguntei", "quero revisão humana", "vou contestar"],
)
def test_contests_are_recognised(text):
    assert is_contest(normalize(text))


@pytest.mark.django_db
def test_seeded_policy_routes_billing_to_financeiro_and_connection_to_suporte():
    snapshot = selectors.policy_snapshot()
    assert snapshot.target("human_requested", "billing") == ("financeiro", 1)
    assert snapshot.target("human_requested", "no_connection") == ("suporte", 2)
    assert snapshot.target("cancellation", "cancellation")[0] == "financeiro"


@pytest.mark.django_db
def test_keywords_pick_the_specialised_entry_and_the_default_otherwise():
    snapshot = selectors.policy_snapshot()
    assert snapshot.kb_for("billing", normalize("segunda via do boleto")).slug == "segunda-via"
    dispute = snapshot.kb_for("billing", normalize("cobraram duas vezes no cartão"))
    assert dispute.slug == "contestacao-cobranca" and dispute.hand_off
    assert snapshot.kb_for("other", normalize("ok")) is None


@pytest.mark.django_db
def test_mandatory_rules_cannot_be_switched_off():
    from bot.models import EscalationRule

    EscalationRule.objects.filter(reason__in=["human_requested", "cancellation"]).update(
        enabled=False
    )
    snapshot = selectors.policy_snapshot()
    for intent in ("human", "cancellation"):
        outcome = decide(snapshot, Triage(intent=intent, confidence=0.1), Context())
        assert outcome.escalates


@pytest.mark.django_db
def test_a_switched_off_optional_rule_no_longer_escalates():
    from bot.models import EscalationRule

    snapshot = selectors.policy_snapshot()
    angry = Triage(intent="billing", sentiment="negative", sentiment_score=-1.0, confidence=0.9)
    assert decide(snapshot, angry, Context(), normalize("boleto")).reason == "negative_sentiment"

    EscalationRule.objects.filter(reason="negative_sentiment").update(enabled=False)
    outcome = decide(selectors.policy_snapshot(), angry, Context(), normalize("boleto"))
    assert (outcome.action, outcome.kb.slug) == ("answered", "segunda-via")

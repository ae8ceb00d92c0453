"""Behaviour of the rule-based pt-BR classifier (bot.rules)."""

from __future__ import annotations

import pytest

from bot.rules import INTENTS, Classification, classify, normalize


def test_intents_are_the_ten_product_intents() -> None:
    assert set(INTENTS) == {
        "no_connection",
        "slow_connection",
        "billing",
        "payment_confirmation",
        "plan_change",
        "technical_visit",
        "cancellation",
        "human",
        "greeting",
        "other",
    }


def test_cancel_my_plan_is_cancellation() -> None:
    assert classify("quero cancelar meu plano").intent == "cancellation"


def test_shouted_request_for_attendant_is_human() -> None:
    assert classify("FALAR COM ATENDENTE").intent == "human"


def test_no_internet_with_angry_emoji_is_negative_no_connection() -> None:
    result = classify("sem net desde ontem 😡")
    assert result.intent == "no_connection"
    assert result.sentiment == "negative"
    assert result.sentiment_score < 0


@pytest.mark.parametrize(
    "text",
    [
        "internet lenta de novo, se nao resolver hoje vou cancelar",
        "oi boa tarde então assim a net cai toda hora e eu já liguei três vezes, quero cancelar",
        "paguei a fatura mas vou cancelar porque não funciona",
        "to indo pra outra operadora",
        "nao quero mais a internet de voces",
        "CANCELAMENTO",
        "canselar o plano",
        "quero portar pra outra empresa",
        "não quero mais ser cliente",
    ],
)
def test_cancellation_is_found_inside_longer_messages(text: str) -> None:
    assert classify(text).intent == "cancellation"


@pytest.mark.parametrize(
    "text",
    [
        "a internet caiu de novo e esse robô não entende nada, quero falar com uma pessoa",
        "sem net há 3 dias, me passa pra um atendente",
        "boleto errado, quero falar com alguém de verdade",
        "não quero falar com robô",
        "me liga por favor",
        "quero ser atendido por uma pessoa",
    ],
)
def test_human_request_is_found_inside_longer_messages(text: str) -> None:
    assert classify(text).intent == "human"


def test_cancellation_outranks_human_when_both_are_asked() -> None:
    assert classify("quero falar com atendente pra cancelar").intent == "cancellation"


def test_declining_to_cancel_is_not_cancellation() -> None:
    result = classify("não quero cancelar, só quero a internet funcionando")
    assert result.intent != "cancellation"
    assert "cancellation.cancel:negated" in result.matched


def test_threat_with_negated_condition_is_still_cancellation() -> None:
    assert classify("se não resolver até amanhã eu cancelo").intent == "cancellation"


def test_negated_possession_of_internet_is_no_connection() -> None:
    assert classify("não tenho internet").intent == "no_connection"


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("a internet ta muito lentaaaa", "slow_connection"),
        ("contratei 500 mega e chega 30", "slow_connection"),
        ("me manda a 2ª via do bolto", "billing"),
        ("segunda via pfv", "billing"),
        ("já paguei, segue o comprovante", "payment_confirmation"),
        ("quero mudar pro plano de 1 giga", "plan_change"),
        ("quero agendar uma visita técnica", "technical_visit"),
        ("quero cancelar a visita do técnico", "technical_visit"),
        ("bom dia", "greeting"),
        ("muito obrigado 🙏", "other"),
        ("", "other"),
        ("👍", "other"),
    ],
)
def test_typical_messages(text: str, intent: str) -> None:
    assert classify(text).intent == intent


def test_greeting_does_not_hide_a_request() -> None:
    assert classify("oi boa tarde tudo bem? a net caiu").intent == "no_connection"


def test_normalize_handles_accents_slang_and_repeats() -> None:
    assert normalize("Vc pode ver pq a NET tá demoraaaa?") == (
        " voce pode ver porque a internet esta demora "
    )
    assert "segunda via" in normalize("2ª via")
    assert "wifi" in normalize("o Wi-Fi caiu")
    assert normalize("paguei 150 reais") == " paguei # reais "


def test_positive_emoji_and_thanks_give_positive_sentiment() -> None:
    result = classify("resolveu, obrigada 😊")
    assert result.sentiment == "positive"
    assert result.sentiment_score > 0


def test_neutral_question_has_neutral_sentiment() -> None:
    assert classify("quando vence minha fatura?").sentiment == "neutral"


@pytest.mark.parametrize(
    "text",
    ["", "   ", "😡😡😡", "a" * 5000, "ok", "1234", "?!?!", "cancelar " * 200, "\n\t"],
)
def test_values_stay_in_range_for_any_input(text: str) -> None:
    result = classify(text)
    assert isinstance(result, Classification)
    assert result.intent in INTENTS
    assert result.sentiment in {"negative", "neutral", "positive"}
    assert -1.0 <= result.sentiment_score <= 1.0
    assert 0.0 <= result.confidence <= 1.0


def test_confidence_is_higher_for_a_clear_message_than_an_ambiguous_one() -> None:
    clear = classify("segunda via do boleto da fatura")
    ambiguous = classify("paguei a fatura")
    assert clear.confidence > ambiguous.confidence


def test_matched_lists_rule_ids_and_never_customer_text() -> None:
    text = "meu nome é Joana, quero cancelar"
    result = classify(text)
    assert "cancellation.cancel" in result.matched
    assert all("joana" not in rule_id.lower() for rule_id in result.matched)
    assert all("." in rule_id for rule_id in result.matched)


def test_classification_is_immutable() -> None:
    result = classify("oi")
    with pytest.raises(AttributeError):
        result.intent = "human"  # type: ignore[misc]

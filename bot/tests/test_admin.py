"""Supervisors edit the knowledge base and the policy in admin; the bot follows at once."""

from __future__ import annotations

import pytest
from auditlog.models import LogEntry
from django.urls import reverse

from bot.models import BotPolicy, EscalationRule, KnowledgeEntry
from bot.tests.conftest import bot_messages

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client, admin_user):
    """A superuser past the second factor (roles' bot permissions: see the report)."""
    from accounts.tests.helpers import login_verified

    login_verified(client, admin_user)
    return client


def test_admin_pages_load(staff, team_billing):
    for name in (
        "admin:bot_knowledgeentry_changelist",
        "admin:bot_knowledgeentry_add",
        "admin:bot_botdecision_changelist",
    ):
        assert staff.get(reverse(name)).status_code == 200
    page = staff.get(reverse("admin:bot_botpolicy_change", args=[BotPolicy.SINGLETON_PK]))
    assert page.status_code == 200
    html = page.content.decode()
    assert '<option value="financeiro" selected>Financeiro</option>' in html


def test_editing_an_answer_in_admin_changes_the_bots_next_reply_and_is_audited(
    staff, say, conversation
):
    say("oi")
    say("preciso da 2 via do boleto")  # caches the policy snapshot
    entry = KnowledgeEntry.objects.get(slug="segunda-via")
    new_answer = "A 2ª via está no aplicativo, em Faturas."

    response = staff.post(
        reverse("admin:bot_knowledgeentry_change", args=[entry.pk]),
        {
            "slug": entry.slug,
            "title": entry.title,
            "intents": ["billing"],
            "keywords": "",
            "diagnosis": "",
            "answer": new_answer,
            "position": entry.position,
            "is_active": "on",
        },
    )

    assert response.status_code == 302
    assert LogEntry.objects.get_for_object(entry).exists()
    say("e a segunda via do mes passado?")
    assert bot_messages(conversation)[-1].text.startswith(new_answer)


def test_an_answer_without_intent_or_diagnosis_is_refused(staff):
    response = staff.post(
        reverse("admin:bot_knowledgeentry_add"),
        {"slug": "vazia", "title": "Vazia", "answer": "Texto", "position": 1, "is_active": "on"},
    )

    assert response.status_code == 200
    assert not KnowledgeEntry.objects.filter(slug="vazia").exists()


def test_a_mandatory_rule_cannot_be_switched_off_in_admin(staff):
    policy = BotPolicy.objects.get()
    rules = list(policy.rules.order_by("pk"))
    routes = list(policy.routes.order_by("pk"))
    data = {
        "negative_sentiment_threshold": policy.negative_sentiment_threshold,
        "min_confidence": policy.min_confidence,
        "max_bot_turns": policy.max_bot_turns,
        "latency_budget_seconds": policy.latency_budget_seconds,
        "allow_answer_adaptation": "on",
        "default_team_slug": "",
        "rules-TOTAL_FORMS": len(rules),
        "rules-INITIAL_FORMS": len(rules),
        "routes-TOTAL_FORMS": len(routes),
        "routes-INITIAL_FORMS": len(routes),
    }
    for i, rule in enumerate(rules):
        data |= {
            f"rules-{i}-id": rule.pk,
            f"rules-{i}-policy": policy.pk,
            f"rules-{i}-reason": rule.reason,
            f"rules-{i}-team_slug": "",
            f"rules-{i}-priority": "" if rule.priority is None else rule.priority,
        }
        if rule.reason != "cancellation":
            data[f"rules-{i}-enabled"] = "on"
    for i, route in enumerate(routes):
        data |= {
            f"routes-{i}-id": route.pk,
            f"routes-{i}-policy": policy.pk,
            f"routes-{i}-intent": route.intent,
            f"routes-{i}-team_slug": "",
            f"routes-{i}-priority": route.priority,
        }

    response = staff.post(reverse("admin:bot_botpolicy_change", args=[policy.pk]), data)

    assert response.status_code == 200  # the form comes back with the error
    assert EscalationRule.objects.get(reason="cancellation").enabled


# --- supervisors, with the change history on the page ----------------------------------------


@pytest.fixture
def supervisor_client(supervisor):
    from django.test import Client

    from accounts.tests.helpers import login_verified

    client = Client()
    login_verified(client, supervisor)
    return client


def _submit(client, url: str, form_id: str, **changes):
    from accounts.tests.helpers import form_data

    page = client.get(url)
    assert page.status_code == 200
    data = form_data(page.content.decode(), form_id)
    data.update(changes)
    return client.post(url, data)


def test_a_supervisor_edits_an_answer_and_reads_its_history(supervisor_client, supervisor):
    entry = KnowledgeEntry.objects.get(slug="segunda-via")
    old_title = entry.title
    url = reverse("admin:bot_knowledgeentry_change", args=[entry.pk])

    response = _submit(supervisor_client, url, "knowledgeentry_form", title="2ª via e PIX")

    assert response.status_code == 302
    history = supervisor_client.get(
        reverse("admin:bot_knowledgeentry_audit_history", args=[entry.pk])
    )
    assert history.status_code == 200
    [latest, *_older] = history.context["entries"]
    assert latest["actor"] == supervisor.username
    assert ("título", old_title, "2ª via e PIX") in latest["changes"]
    assert "Histórico de alterações" in supervisor_client.get(url).content.decode()


def test_the_policys_history_includes_its_rules(supervisor_client, supervisor):
    policy = BotPolicy.objects.get()
    rule = policy.rules.get(reason=EscalationRule.Reason.NEGATIVE_SENTIMENT)
    url = reverse("admin:bot_botpolicy_change", args=[policy.pk])
    page_data_index = list(policy.rules.order_by("pk")).index(rule)

    response = _submit(
        supervisor_client,
        url,
        "botpolicy_form",
        min_confidence="0.45",
        **{f"rules-{page_data_index}-priority": "3"},
    )

    assert response.status_code == 302
    history = supervisor_client.get(reverse("admin:bot_botpolicy_audit_history", args=[policy.pk]))
    changes = [c for entry in history.context["entries"] for c in entry["changes"]]
    fields = {field for field, _old, _new in changes}
    assert "confiança mínima" in fields
    assert "prioridade" in fields  # the rule edited inline
    assert {e["actor"] for e in history.context["entries"]} == {supervisor.username}

"""Outages as customers and supervisors meet them: the bot's answer, the all-clear, detection.

Every customer turn is a signed webhook; the bot decides in the (eager) task and replies leave
through the outbox to the Graph simulator over loopback, where these tests read what each
phone received. Supervisors act through the admin (actions are POSTs to the changelist).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.tests.helpers import login_verified
from bot.replies import HUMAN
from conversations.models import Conversation, ConversationEvent, Message
from isp import formatting
from isp.models import (
    Contract,
    ContractPhone,
    Outage,
    OutageAlert,
    OutageConversation,
    phone_index,
)
from isp.seed import seed_isp_demo
from isp.tasks import outage_all_clear
from whatsapp.tests.bulk_helpers import *  # noqa: F403
from whatsapp.tests.bulk_helpers import text_of
from whatsapp.tests.loopback import *  # noqa: F403

pytestmark = pytest.mark.django_db

ANA = "5511999990001"  # contract 10001, São Paulo / Vila Mariana
HOUSEHOLD = "5511999990002"  # contracts 10002 and 10003, São Paulo / Moema
STRANGER = "5511988880000"  # on no contract


@pytest.fixture
def demo_erp(settings, team_support, team_billing, tmp_path):
    settings.ERP_ADAPTER = "demo"
    settings.MEDIA_ROOT = tmp_path
    seed_isp_demo()


@pytest.fixture
def vila_mariana_outage(demo_erp, supervisor):
    return Outage.objects.create(
        title="Rompimento de fibra na Vila Mariana",
        city="são paulo",  # tags match whatever the case
        neighbourhood="Vila Mariana",
        public_message="Um rompimento de fibra afeta a sua região; a equipe já está no local.",
        estimated_end_at=timezone.now() + timedelta(hours=3),
        created_by=supervisor,
    )


def _resolve_in_admin(client, capture, supervisor, outage) -> None:
    login_verified(client, supervisor)
    with capture(execute=True):
        response = client.post(
            "/admin/isp/outage/", {"action": "resolve", "_selected_action": [outage.pk]}
        )
    assert response.status_code == 302
    client.logout()


def test_a_customer_of_the_region_gets_the_outage_and_is_not_queued(vila_mariana_outage, phone):
    ana = phone(ANA)

    greeting, answer = ana.say("estou sem internet desde cedo")

    assert "Privacidade" in text_of(greeting)
    text = text_of(answer)
    assert "Um rompimento de fibra afeta a sua região" in text
    estimate = formatting.day_and_time(vila_mariana_outage.estimated_end_at)
    assert f"Previsão de normalização: {estimate}." in text  # São Paulo time
    assert [b["reply"]["id"] for b in answer["interactive"]["action"]["buttons"]] == [HUMAN]
    conversation = ana.conversation
    assert conversation.state == Conversation.State.CLOSED
    assert conversation.resolution == Conversation.Resolution.RESOLVED_BY_BOT
    assert conversation.csat_requested_at is None  # no survey for an outage
    link = OutageConversation.objects.get(outage=vila_mariana_outage)
    assert (link.conversation_id, link.contract_ref) == (conversation.pk, "10001")
    assert not ConversationEvent.objects.filter(
        conversation=conversation, kind=ConversationEvent.Kind.ESCALATED
    ).exists()


def test_slow_connection_in_the_region_gets_the_outage_too(vila_mariana_outage, phone):
    ana = phone(ANA)

    *_greeting, answer = ana.say("a internet está muito lenta")

    assert "rompimento de fibra" in text_of(answer)
    assert OutageConversation.objects.filter(outage=vila_mariana_outage).count() == 1


def test_a_customer_outside_the_region_gets_the_normal_flow(vila_mariana_outage, phone):
    family = phone(HOUSEHOLD)  # Moema: not in the outage

    sent = family.say("estou sem internet")

    assert all("rompimento" not in text_of(b) for b in sent)
    assert "Encontrei 2 contratos" in text_of(sent[-1])  # self-service asks which contract
    assert family.conversation.state == Conversation.State.BOT
    assert not OutageConversation.objects.exists()


def test_an_unidentified_customer_gets_the_normal_flow(vila_mariana_outage, phone):
    stranger = phone(STRANGER)

    sent = stranger.say("estou sem internet")

    assert all("rompimento" not in text_of(b) for b in sent)
    assert not OutageConversation.objects.exists()


def test_a_customer_who_insists_on_a_person_gets_one(vila_mariana_outage, phone):
    ana = phone(ANA)
    ana.say("estou sem internet")

    ana.tap(HUMAN, "Falar com atendente")

    conversation = ana.conversation
    assert conversation.state == Conversation.State.WAITING
    assert conversation.escalation_reason == "bot:human_requested"


def test_resolving_sends_the_all_clear_as_text_inside_the_window_once(
    vila_mariana_outage, phone, client, django_capture_on_commit_callbacks, supervisor, graph
):
    ana = phone(ANA)
    ana.say("estou sem internet")
    ana.say("continua sem internet!")  # a second conversation, attached too
    assert OutageConversation.objects.filter(outage=vila_mariana_outage).count() == 2

    _resolve_in_admin(client, django_capture_on_commit_callbacks, supervisor, vila_mariana_outage)
    graph.wait_idle(5)

    (notice,) = ana.new()
    assert notice["type"] == "text"
    assert "foi resolvida" in notice["text"]["body"]
    vila_mariana_outage.refresh_from_db()
    assert vila_mariana_outage.status == Outage.Status.RESOLVED
    assert vila_mariana_outage.resolved_by == supervisor
    states = sorted(
        OutageConversation.objects.filter(outage=vila_mariana_outage).values_list(
            "all_clear", flat=True
        )
    )
    assert states == ["covered", "text"]

    # A retried task (or the beat tick) finds nobody left to tell.
    with django_capture_on_commit_callbacks(execute=True):
        outage_all_clear.delay(vila_mariana_outage.pk)
    graph.wait_idle(5)
    assert ana.new() == []


def test_outside_the_window_the_all_clear_is_the_approved_template(
    vila_mariana_outage,
    phone,
    client,
    django_capture_on_commit_callbacks,
    supervisor,
    graph,
    templates,
):
    ana = phone(ANA)
    ana.say("estou sem internet")
    Conversation.objects.filter(pk=ana.conversation.pk).update(
        last_customer_message_at=timezone.now() - timedelta(hours=25)
    )

    _resolve_in_admin(client, django_capture_on_commit_callbacks, supervisor, vila_mariana_outage)
    graph.wait_idle(5)

    (notice,) = ana.new()
    assert notice["type"] == "template"
    assert notice["template"]["name"] == "falha_resolvida"
    (parameter,) = notice["template"]["components"][0]["parameters"]
    assert parameter["text"] == vila_mariana_outage.region_label
    message = Message.objects.get(type=Message.Type.TEMPLATE)
    assert message.conversation_id == ana.conversation.pk


def test_resolving_twice_in_admin_notifies_nobody_twice(
    vila_mariana_outage, phone, client, django_capture_on_commit_callbacks, supervisor, graph
):
    ana = phone(ANA)
    ana.say("estou sem internet")
    _resolve_in_admin(client, django_capture_on_commit_callbacks, supervisor, vila_mariana_outage)
    _resolve_in_admin(client, django_capture_on_commit_callbacks, supervisor, vila_mariana_outage)
    graph.wait_idle(5)

    assert len(ana.new()) == 1


def test_the_all_clear_goes_out_in_batches_at_the_bulk_pace(
    vila_mariana_outage,
    phone,
    client,
    django_capture_on_commit_callbacks,
    supervisor,
    graph,
    settings,
):
    settings.CAMPAIGN_BATCH_SIZE = 1  # one customer per batch: the task chains batches
    family = [phone(ANA)]
    for i in range(2):
        number = f"551199998{i:04d}"
        contract = Contract.objects.create(
            ref=f"2000{i}",
            plan_name="Fibra 300 Mega",
            city="São Paulo",
            neighbourhood="Vila Mariana",
        )
        ContractPhone.objects.create(
            contract=contract, phone="+" + number, phone_index=phone_index("+" + number)
        )
        family.append(phone(number))
    for member in family:
        member.say("sem internet aqui")
    assert OutageConversation.objects.count() == 3

    _resolve_in_admin(client, django_capture_on_commit_callbacks, supervisor, vila_mariana_outage)
    graph.wait_idle(5)

    assert [len(member.new()) for member in family] == [1, 1, 1]


# --- detection ------------------------------------------------------------------------------------


def _customers_on_olt(n: int, olt: str) -> list[str]:
    numbers = []
    for i in range(n):
        number = f"55199777{i:05d}"  # a mobile with its 9th digit: canonical as it is
        contract = Contract.objects.create(
            ref=f"3000{i}",
            plan_name="Fibra 300 Mega",
            city="Campinas",
            neighbourhood=f"Bairro {i}",
            olt=olt,
            status="active",
            connection="offline",
        )
        ContractPhone.objects.create(
            contract=contract, phone="+" + number, phone_index=phone_index("+" + number)
        )
        numbers.append(number)
    return numbers


def test_detection_raises_one_alert_at_the_threshold(demo_erp, phone, settings):
    settings.OUTAGE_DETECT_MIN_CUSTOMERS = 3
    settings.OUTAGE_DETECT_WINDOW_MINUTES = 15
    settings.OUTAGE_DETECT_TAGS = ["olt"]
    numbers = _customers_on_olt(4, "OLT-CAM-09")

    phone(numbers[0]).say("estou sem internet")
    phone(numbers[1]).say("caiu a internet aqui")
    phone(numbers[1]).say("continua sem internet")  # the same customer again: not a new one
    assert not OutageAlert.objects.exists()

    phone(numbers[2]).say("internet caiu")
    phone(numbers[3]).say("estou sem internet")

    (alert,) = OutageAlert.objects.all()
    assert (alert.tag, alert.olt, alert.customers) == ("olt", "OLT-CAM-09", 3)
    assert alert.status == OutageAlert.Status.PENDING


def test_no_alert_for_a_region_with_an_open_outage(demo_erp, phone, settings, supervisor):
    settings.OUTAGE_DETECT_MIN_CUSTOMERS = 2
    settings.OUTAGE_DETECT_TAGS = ["olt"]
    numbers = _customers_on_olt(2, "OLT-CAM-09")
    Outage.objects.create(title="OLT 9", olt="OLT-CAM-09", public_message="Falha na OLT.")

    for number in numbers:
        assert "Falha na OLT." in text_of(phone(number).say("sem internet")[-1])

    assert not OutageAlert.objects.exists()


def test_an_alert_opens_a_prefilled_outage_form_and_saving_it_handles_the_alert(
    demo_erp, client, supervisor
):
    alert = OutageAlert.objects.create(
        tag="neighbourhood", city="Campinas", neighbourhood="Cambuí", customers=5, window_minutes=15
    )
    login_verified(client, supervisor)

    listing = client.get("/admin/isp/outagealert/")
    assert listing.status_code == 200
    add_url = f"/admin/isp/outage/add/?city=Campinas&neighbourhood=Cambu%C3%AD&alert={alert.pk}"
    assert "Registrar falha" in listing.content.decode()
    form = client.get(add_url)
    assert form.status_code == 200
    assert 'value="Cambuí"' in form.content.decode()

    now = timezone.localtime()
    response = client.post(
        add_url,
        {
            "title": "Falha no Cambuí",
            "starts_at_0": now.strftime("%d/%m/%Y"),
            "starts_at_1": now.strftime("%H:%M:%S"),
            "city": "Campinas",
            "neighbourhood": "Cambuí",
            "public_message": "Uma falha de energia afeta o Cambuí.",
        },
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    outage = Outage.objects.get()
    assert outage.created_by == supervisor
    alert.refresh_from_db()
    assert (alert.status, alert.outage, alert.handled_by) == ("accepted", outage, supervisor)


def test_the_dashboard_shows_outages_in_progress_and_pending_alerts(
    vila_mariana_outage, client, supervisor
):
    OutageAlert.objects.create(tag="olt", olt="OLT-CAM-02", customers=6, window_minutes=15)
    login_verified(client, supervisor)

    page = client.get("/console/dashboard/")

    assert page.status_code == 200
    html = page.content.decode()
    tile = html[html.index('data-figure="outages"') :]
    tile = tile[: tile.index("</article>")]
    assert "Falhas em andamento" in tile
    assert '<p class="big">1</p>' in tile
    assert "Vila Mariana, são paulo · 0 conversa(s) vinculada(s)" in tile
    assert "1 alerta(s) de possível falha para analisar" in tile
    assert "/admin/isp/outagealert/" in tile

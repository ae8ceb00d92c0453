"""Template campaigns as supervisors run them and customers receive them.

Customers first write through the signed webhook (so they are our WhatsApp customers with a
conversation); their consents are in the compliance ledger. A supervisor creates the campaign
in admin and runs it with admin actions; the sends leave through the outbox to the Graph
simulator over loopback, statuses come back as signed status webhooks. The bulk pace is the
project's limiter: tests read its state and reset it, never sleep.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.tests.helpers import login_verified
from compliance.models import ConsentRecord
from compliance.services.consent import consent_grant, consent_revoke
from isp import bulk
from isp.campaigns import campaign_progress
from isp.models import Campaign, CampaignRecipient, Contract, ContractPhone, phone_index
from isp.tasks import bulk_sends_tick, campaign_run
from ispsupport import ratelimit
from whatsapp.tests.bulk_helpers import *  # noqa: F403
from whatsapp.tests.bulk_helpers import post_status, text_of
from whatsapp.tests.log_capture import *  # noqa: F403
from whatsapp.tests.loopback import *  # noqa: F403

pytestmark = pytest.mark.django_db

MARKETING = ConsentRecord.Purpose.MARKETING
SERVICE = ConsentRecord.Purpose.SERVICE_MESSAGES


@pytest.fixture
def town(settings, graph, phone, templates, team_support, team_billing):
    """Six customers of Campinas and one of Santos, each with a contract and a conversation."""
    settings.ERP_ADAPTER = "demo"
    settings.CAMPAIGN_SEND_RATE_PER_SECOND = 2  # a burst of 2, then one every half second
    phones = {}
    for i, (name, city) in enumerate(
        [
            ("ana", "Campinas"),
            ("bia", "Campinas"),
            ("caio", "Campinas"),
            ("davi", "Campinas"),
            ("eva", "Campinas"),  # never consented to marketing
            ("fabio", "Campinas"),  # revoked marketing
            ("gil", "Santos"),  # consented, but outside the segment
        ]
    ):
        number = f"55199888{i:05d}"
        contract = Contract.objects.create(
            ref=f"4000{i}", plan_name="Fibra 300 Mega", city=city, neighbourhood="Centro"
        )
        ContractPhone.objects.create(
            contract=contract, phone="+" + number, phone_index=phone_index("+" + number)
        )
        phones[name] = phone(number)
        phones[name].say("oi")
        phones[name].new()
    for name in ("ana", "bia", "caio", "davi", "fabio", "gil"):
        consent_grant(customer=phones[name].customer, purpose=MARKETING, channel="whatsapp")
    consent_revoke(customer=phones["fabio"].customer, purpose=MARKETING, channel="whatsapp")
    return phones


def _campaign(**fields) -> Campaign:
    values = {
        "title": "Upgrade de verão",
        "purpose": Campaign.Purpose.MARKETING,
        "template_name": "oferta_upgrade",
        "parameters": ["500 Mega pelo preço de 300"],
        "cities": ["Campinas"],
    }
    values.update(fields)
    return Campaign.objects.create(**values)


def _action(client, capture, action: str, campaign: Campaign) -> None:
    """An admin action on the campaign list (the client is logged in)."""
    with capture(execute=True):
        response = client.post(
            "/admin/isp/campaign/", {"action": action, "_selected_action": [campaign.pk]}
        )
    assert response.status_code == 302


def _run(capture, graph, campaign: Campaign) -> None:
    """The next turn of the sending task (as its countdown or the beat tick would start it)."""
    ratelimit.clear(bulk.BULK_LIMITER_KEY)  # the wait the limiter asked for has passed
    with capture(execute=True):
        campaign_run.delay(campaign.pk)
    graph.wait_idle(5)


def _templates_to(phones, names) -> dict[str, int]:
    return {n: sum(1 for b in phones[n].received() if b["type"] == "template") for n in names}


def test_a_campaign_created_in_admin_reaches_only_consenting_customers_of_the_segment(
    town, client, django_capture_on_commit_callbacks, supervisor, graph, settings
):
    settings.CAMPAIGN_SEND_RATE_PER_SECOND = 100
    login_verified(client, supervisor)
    now = timezone.localtime()
    response = client.post(
        "/admin/isp/campaign/add/",
        {
            "title": "Upgrade de verão",
            "purpose": "marketing",
            "template": "oferta_upgrade|pt_BR",
            "parameters_text": "500 Mega pelo preço de 300",
            "starts_at_0": now.strftime("%d/%m/%Y"),
            "starts_at_1": now.strftime("%H:%M:%S"),
            "cities_choice": ["Campinas"],
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    campaign = Campaign.objects.get()
    assert (campaign.template_name, campaign.parameters) == (
        "oferta_upgrade",
        ["500 Mega pelo preço de 300"],
    )

    _action(client, django_capture_on_commit_callbacks, "schedule", campaign)
    graph.wait_idle(5)

    everyone = ["ana", "bia", "caio", "davi", "eva", "fabio", "gil"]
    assert _templates_to(town, everyone) == {
        "ana": 1,
        "bia": 1,
        "caio": 1,
        "davi": 1,
        "eva": 0,  # no marketing consent
        "fabio": 0,  # opted out
        "gil": 0,  # Santos: not in the segment
    }
    (body,) = [b for b in town["ana"].received() if b["type"] == "template"]
    assert body["template"]["name"] == "oferta_upgrade"
    assert body["template"]["components"][0]["parameters"][0]["text"] == (
        "500 Mega pelo preço de 300"
    )
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.COMPLETED
    skips = dict(
        campaign.recipients.filter(state="skipped").values_list("customer_id", "skip_reason")
    )
    assert skips == {
        town["eva"].customer.pk: "no_consent",
        town["fabio"].customer.pk: "opted_out",
    }


def test_a_service_notice_needs_no_grant_but_honours_a_revocation(
    town, django_capture_on_commit_callbacks, graph, settings
):
    settings.CAMPAIGN_SEND_RATE_PER_SECOND = 100
    consent_revoke(customer=town["bia"].customer, purpose=SERVICE, channel="whatsapp")
    consent_grant(customer=town["bia"].customer, purpose=SERVICE, channel="whatsapp")
    consent_revoke(customer=town["bia"].customer, purpose=SERVICE, channel="whatsapp")
    campaign = _campaign(
        purpose=Campaign.Purpose.SERVICE_MESSAGES,
        template_name="aviso_manutencao",
        parameters=["02/12", "2h", "4h"],
        status=Campaign.Status.SCHEDULED,
    )

    _run(django_capture_on_commit_callbacks, graph, campaign)

    sent = _templates_to(town, ["ana", "bia", "eva", "fabio", "gil"])
    assert sent == {"ana": 1, "bia": 0, "eva": 1, "fabio": 1, "gil": 0}


def test_the_campaign_respects_the_bulk_pace_of_the_limiter(
    town, django_capture_on_commit_callbacks, graph
):
    campaign = _campaign(status=Campaign.Status.SCHEDULED)

    with django_capture_on_commit_callbacks(execute=True):
        campaign_run.delay(campaign.pk)
    graph.wait_idle(5)

    # A burst of two, then the limiter asked to wait: the rest stays queued for later.
    assert campaign.recipients.filter(state="sent").count() == 2
    assert campaign.recipients.filter(state="queued").count() == 2
    allowed, wait = bulk.bulk_slot()
    assert not allowed and 0 < wait <= 0.5
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.RUNNING
    assert campaign.next_run_at > timezone.now() - timedelta(seconds=1)
    assert Campaign.objects.filter(pk=campaign.pk, next_run_at__isnull=False).exists()

    _run(django_capture_on_commit_callbacks, graph, campaign)

    assert campaign.recipients.filter(state="sent").count() == 4
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.COMPLETED
    assert sum(_templates_to(town, ["ana", "bia", "caio", "davi"]).values()) == 4


def test_sair_in_the_middle_of_a_campaign_stops_the_remaining_sends_to_that_customer(
    town, django_capture_on_commit_callbacks, graph
):
    campaign = _campaign(status=Campaign.Status.SCHEDULED)
    with django_capture_on_commit_callbacks(execute=True):
        campaign_run.delay(campaign.pk)  # ana and bia get it; caio and davi wait
    graph.wait_idle(5)
    waiting = campaign.recipients.filter(state="queued").select_related("customer")
    caio = town["caio"]
    assert caio.customer.pk in {r.customer_id for r in waiting}

    reply = caio.say("SAIR")

    assert "não vai mais receber mensagens promocionais" in text_of(reply[-1])
    _run(django_capture_on_commit_callbacks, graph, campaign)
    assert _templates_to(town, ["caio", "davi"]) == {"caio": 0, "davi": 1}
    recipient = campaign.recipients.get(customer=caio.customer)
    assert (recipient.state, recipient.skip_reason) == ("skipped", "opted_out")


def test_statuses_from_meta_are_counted_in_admin(
    town, client, django_capture_on_commit_callbacks, graph, supervisor, settings
):
    settings.CAMPAIGN_SEND_RATE_PER_SECOND = 100
    campaign = _campaign(status=Campaign.Status.SCHEDULED)
    _run(django_capture_on_commit_callbacks, graph, campaign)
    sends = {
        r.customer_id: r.message.wamid
        for r in campaign.recipients.filter(state="sent").select_related("message")
    }
    assert len(sends) == 4
    wamids = [sends[town[n].customer.pk] for n in ("ana", "bia", "caio", "davi")]
    recipients = [town[n].wa_id for n in ("ana", "bia", "caio", "davi")]
    # ana: delivered; bia: delivered then read; caio: failed; davi: only sent.
    for wamid, to, states in zip(
        wamids,
        recipients,
        [["delivered"], ["delivered", "read"], ["failed"], ["sent"]],
        strict=True,
    ):
        for state in states:
            errors = (
                [{"code": 131026, "title": "Message undeliverable"}] if state == "failed" else None
            )
            post_status(
                client,
                django_capture_on_commit_callbacks,
                wamid=wamid,
                state=state,
                recipient=to,
                errors=errors,
            )

    progress = campaign_progress(campaign=campaign)
    assert (progress.total, progress.sent, progress.skipped) == (6, 4, 2)
    assert (progress.delivered, progress.read, progress.failed) == (2, 1, 1)
    assert progress.accepted == 3  # sent, delivered or read: Meta took it

    login_verified(client, supervisor)
    listing = client.get("/admin/isp/campaign/")
    assert listing.status_code == 200
    html = listing.content.decode()
    for column in ("field-progress_delivered", "field-progress_read", "field-progress_failed"):
        assert column in html
    assert '<td class="field-progress_delivered">2</td>' in html
    assert '<td class="field-progress_read">1</td>' in html
    assert '<td class="field-progress_failed">1</td>' in html
    page = client.get(f"/admin/isp/campaign/{campaign.pk}/change/")
    assert page.status_code == 200
    assert "Pediu para não receber (SAIR): 1" in page.content.decode()


def test_pause_resume_and_cancel(
    town, client, django_capture_on_commit_callbacks, graph, supervisor, settings
):
    settings.CAMPAIGN_SEND_RATE_PER_SECOND = 1  # one send, then one a second
    login_verified(client, supervisor)
    campaign = _campaign(status=Campaign.Status.SCHEDULED)
    with django_capture_on_commit_callbacks(execute=True):
        campaign_run.delay(campaign.pk)
    graph.wait_idle(5)
    assert campaign.recipients.filter(state="sent").count() == 1

    _action(client, django_capture_on_commit_callbacks, "pause", campaign)
    _run(django_capture_on_commit_callbacks, graph, campaign)
    with django_capture_on_commit_callbacks(execute=True):
        bulk_sends_tick.delay()
    assert campaign.recipients.filter(state="sent").count() == 1  # paused: nothing more
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PAUSED

    ratelimit.clear(bulk.BULK_LIMITER_KEY)
    _action(client, django_capture_on_commit_callbacks, "resume", campaign)
    graph.wait_idle(5)
    assert campaign.recipients.filter(state="sent").count() == 2  # resumed: the next slot

    _action(client, django_capture_on_commit_callbacks, "cancel", campaign)
    _run(django_capture_on_commit_callbacks, graph, campaign)

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.CANCELLED
    assert campaign.recipients.filter(state="sent").count() == 2
    assert campaign.recipients.filter(skip_reason="cancelled").count() == 2
    assert sum(_templates_to(town, ["ana", "bia", "caio", "davi"]).values()) == 2


def test_a_campaign_to_the_customers_of_an_outage(
    town, django_capture_on_commit_callbacks, graph, settings
):
    from isp.models import Outage, OutageConversation

    settings.CAMPAIGN_SEND_RATE_PER_SECOND = 100
    outage = Outage.objects.create(title="Centro", city="Campinas", public_message="Falha.")
    for name in ("bia", "eva"):
        OutageConversation.objects.create(
            outage=outage, conversation=town[name].conversation, customer=town[name].customer
        )
    campaign = _campaign(
        purpose=Campaign.Purpose.SERVICE_MESSAGES,
        template_name="aviso_manutencao",
        parameters=["02/12", "2h", "4h"],
        cities=[],
        outage=outage,
        status=Campaign.Status.SCHEDULED,
    )

    _run(django_capture_on_commit_callbacks, graph, campaign)

    assert _templates_to(town, ["ana", "bia", "eva"]) == {"ana": 0, "bia": 1, "eva": 1}


def test_a_marketing_campaign_refuses_a_utility_template(town, client, supervisor):
    login_verified(client, supervisor)
    now = timezone.localtime()
    response = client.post(
        "/admin/isp/campaign/add/",
        {
            "title": "Oferta",
            "purpose": "marketing",
            "template": "aviso_manutencao|pt_BR",
            "parameters_text": "a\nb\nc",
            "starts_at_0": now.strftime("%d/%m/%Y"),
            "starts_at_1": now.strftime("%H:%M:%S"),
        },
    )
    assert response.status_code == 200
    assert "exige um modelo MARKETING" in response.content.decode()
    assert not Campaign.objects.exists()


def test_a_scheduled_campaign_waits_for_its_time(town, django_capture_on_commit_callbacks, graph):
    campaign = _campaign(
        status=Campaign.Status.SCHEDULED, starts_at=timezone.now() + timedelta(hours=1)
    )

    with django_capture_on_commit_callbacks(execute=True):
        bulk_sends_tick.delay()
        campaign_run.delay(campaign.pk)

    assert not CampaignRecipient.objects.exists()
    assert not any(b["type"] == "template" for b in graph.sent())


def test_a_campaign_run_logs_none_of_the_recipients_data(
    town, client, django_capture_on_commit_callbacks, graph, settings, logs
):
    """Issue 6 ("nothing personal in logs") on bulk sends: the sending task, the outbox and
    the status webhooks log no recipient's number or name."""
    settings.CAMPAIGN_SEND_RATE_PER_SECOND = 100
    campaign = _campaign(status=Campaign.Status.SCHEDULED)
    _run(django_capture_on_commit_callbacks, graph, campaign)
    sent = campaign.recipients.filter(state="sent").select_related("message", "customer")
    assert len(sent) == 4
    for recipient in sent:
        post_status(
            client,
            django_capture_on_commit_callbacks,
            wamid=recipient.message.wamid,
            state="delivered",
            recipient=recipient.customer.wa_id,
        )

    numbers = [p.wa_id for p in town.values()]
    with_plus = ["+" + n for n in numbers]
    assert logs.written  # the run logged
    assert not logs.leaks(
        [*numbers, *with_plus, "Cliente Teste"], masked_only=(*numbers, *with_plus)
    )

"""Personal data of outages and campaigns: exported, erased and purged with the customer."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from compliance.registry import ErasureReport, get
from conversations.models import Message
from conversations.tests.factories import ConversationFactory, MessageFactory
from isp.models import Campaign, CampaignRecipient, Outage, OutageConversation, OutageReport

pytestmark = pytest.mark.django_db


@pytest.fixture
def records():
    conversation = ConversationFactory()
    other = ConversationFactory()
    customer = conversation.customer
    outage = Outage.objects.create(
        title="OLT 3", olt="OLT-03", public_message="Falha.", status="resolved",
        resolved_at=timezone.now(),
    )  # fmt: skip
    campaign = Campaign.objects.create(
        title="Manutenção", purpose="service_messages", template_name="aviso_manutencao",
        status="completed", finished_at=timezone.now(),
    )  # fmt: skip
    message = MessageFactory(
        conversation=conversation, direction="out", sender_kind="system", status="read"
    )
    for conv in (conversation, other):
        OutageConversation.objects.create(
            outage=outage, conversation=conv, customer=conv.customer, contract_ref="10001",
            all_clear="text",
        )  # fmt: skip
        OutageReport.objects.create(customer=conv.customer, contract_ref="10001", olt="OLT-03")
        CampaignRecipient.objects.create(
            campaign=campaign, customer=conv.customer, contract_ref="10001", state="sent",
            message=message if conv is conversation else None,
        )  # fmt: skip
    return customer, other.customer


def test_export_lists_the_customers_outage_notices_reports_and_campaigns(records):
    customer, _other = records

    exported = get("isp.outages_campaigns").export(customer)

    (notice,) = exported["isp_outage_notices"]
    assert (notice["outage"], notice["contract"], notice["all_clear"]) == ("OLT 3", "10001", "text")
    (report,) = exported["isp_outage_reports"]
    assert report["region"] == "OLT-03"
    (sent,) = exported["isp_campaigns"]
    assert (sent["campaign"], sent["state"], sent["delivery"]) == (
        "Manutenção",
        "sent",
        Message.Status.READ,
    )


def test_erasure_deletes_only_that_customers_rows(records):
    customer, other = records
    report = ErasureReport()

    get("isp.outages_campaigns").erase(customer, report)

    assert report.deleted == {
        "isp.outageconversation": 1,
        "isp.outagereport": 1,
        "isp.campaignrecipient": 1,
    }
    for model in (OutageConversation, OutageReport, CampaignRecipient):
        assert list(model.objects.values_list("customer_id", flat=True)) == [other.pk]


def test_retention_purges_old_reports_links_and_recipients(records, settings):
    settings.COMPLIANCE_RETENTION_DAYS = {
        **settings.COMPLIANCE_RETENTION_DAYS,
        "outage_reports": 2,
        "outage_links": 180,
        "campaign_recipients": 365,
    }
    provider = get("isp.outages_campaigns")
    now = timezone.now()

    assert provider.purge(now=now, batch_size=10, dry_run=False) == {
        "outage_reports": 0,
        "outage_links": 0,
        "campaign_recipients": 0,
    }
    OutageReport.objects.update(reported_at=now - timedelta(days=3))
    Outage.objects.update(resolved_at=now - timedelta(days=181))
    Campaign.objects.update(finished_at=now - timedelta(days=366))

    assert provider.purge(now=now, batch_size=10, dry_run=False) == {
        "outage_reports": 2,
        "outage_links": 2,
        "campaign_recipients": 2,
    }

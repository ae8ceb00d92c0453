"""Approved templates: synced from the Graph simulator with the real client (paged), kept
current by Meta's status webhooks, loaded from the demo catalogue for ``make run``."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from whatsapp import inbound
from whatsapp.client import GraphClient
from whatsapp.models import MessageTemplate, WebhookEvent
from whatsapp.simulator.catalogue import DEMO_TEMPLATES
from whatsapp.templates import approved_template, templates_sync
from whatsapp.testing import signed_post
from whatsapp.tests.loopback import *  # noqa: F403

pytestmark = pytest.mark.django_db


def _client(settings) -> GraphClient:
    return GraphClient(
        base_url=settings.WHATSAPP_API_BASE_URL,
        version=settings.WHATSAPP_API_VERSION,
        access_token=settings.WHATSAPP_ACCESS_TOKEN,
    )


def _template_requests(graph):
    return [r for r in graph.requests if r.path.endswith("/message_templates")]


def test_sync_reads_every_page_with_the_token_and_upserts(graph, settings):
    settings.WHATSAPP_BUSINESS_ACCOUNT_ID = "100000000000010"
    client = _client(settings)
    listed = list(client.list_templates("100000000000010", page_size=2))
    assert [t["name"] for t in listed] == [t["name"] for t in DEMO_TEMPLATES]
    graph.requests.clear()

    report = templates_sync(client=client)

    assert report.created == len(DEMO_TEMPLATES)
    calls = _template_requests(graph)
    assert calls and all(r.method == "GET" for r in calls)
    assert all(r.authorization == f"Bearer {settings.WHATSAPP_ACCESS_TOKEN}" for r in calls)
    assert calls[0].path == (
        f"/simulator/graph/{settings.WHATSAPP_API_VERSION}/100000000000010/message_templates"
    )
    row = MessageTemplate.objects.get(name="solicitacao_dados_respondida", language="pt_BR")
    assert row.status == MessageTemplate.Status.APPROVED
    assert row.meta_id == "900000000000003"
    assert row.parameter_count == 1 and "{{1}}" in row.body_text
    assert MessageTemplate.objects.get(name="aviso_manutencao").parameter_count == 3

    # Meta paused one and stopped listing another; a hand-made demo row is left alone.
    MessageTemplate.objects.create(name="feito_no_admin", body_text="Oi")
    graph.templates[0]["status"] = "PAUSED"
    removed = graph.templates.pop()
    again = templates_sync(client=client)
    assert (again.created, again.updated, again.disabled) == (0, 1, 1)
    assert MessageTemplate.objects.get(name=DEMO_TEMPLATES[0]["name"]).status == "PAUSED"
    assert MessageTemplate.objects.get(name=removed["name"]).status == "DISABLED"
    assert MessageTemplate.objects.get(name="feito_no_admin").status == "APPROVED"
    assert approved_template(DEMO_TEMPLATES[0]["name"]) is None


def test_a_refused_list_changes_nothing_and_the_command_says_why(graph, settings):
    MessageTemplate.objects.create(name="existente", body_text="Oi", meta_id="1")
    graph.push_error(190, endpoint="templates")
    with pytest.raises(CommandError, match="code 190"):
        call_command("sync_whatsapp_templates")
    assert list(MessageTemplate.objects.values_list("name", "status")) == [
        ("existente", "APPROVED")
    ]


def test_the_command_syncs_from_the_simulator(graph, capsys):
    call_command("sync_whatsapp_templates")
    assert f"{len(DEMO_TEMPLATES)} created" in capsys.readouterr().out
    assert _template_requests(graph)


def test_status_webhook_applies_at_once(client):
    MessageTemplate.objects.create(
        name="protocolo_encerrado", language="pt_BR", body_text="x", meta_id="905507062668800"
    )
    body = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "880480871844883",
                "time": 1674250641,
                "changes": [
                    {
                        "field": "message_template_status_update",
                        "value": {
                            "event": "REJECTED",
                            "message_template_id": 905507062668800,
                            "message_template_name": "protocolo_encerrado",
                            "message_template_language": "pt_BR",
                            "reason": "SCAM",
                        },
                    }
                ],
            }
        ],
    }
    assert signed_post(client, body).status_code == 200
    for event_id in WebhookEvent.objects.values_list("pk", flat=True):
        inbound.event_process(event_id=event_id)
    row = MessageTemplate.objects.get()
    assert (row.status, row.status_reason) == ("REJECTED", "SCAM")
    assert WebhookEvent.objects.get().status == WebhookEvent.Status.PROCESSED


def test_demo_catalogue_loads_once_and_only_in_development(settings, capsys):
    settings.DEBUG = True
    call_command("sync_whatsapp_templates", "--demo")
    assert MessageTemplate.objects.count() == len(DEMO_TEMPLATES)
    call_command("sync_whatsapp_templates", "--demo")
    assert "not empty" in capsys.readouterr().out
    settings.DEBUG = False
    MessageTemplate.objects.all().delete()
    with pytest.raises(CommandError, match="development only"):
        call_command("sync_whatsapp_templates", "--demo")
    assert not MessageTemplate.objects.exists()

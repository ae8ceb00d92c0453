"""Supervisors edit the WhatsApp templates offered outside the 24-hour window, with history."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.tests.helpers import form_data, login_verified
from whatsapp.models import MessageTemplate

pytestmark = pytest.mark.django_db


def test_a_supervisor_edits_a_template_and_reads_its_history(supervisor):
    template = MessageTemplate.objects.create(
        name="retomada", body_text="Olá! Podemos continuar o atendimento?"
    )
    client = Client()
    login_verified(client, supervisor)
    url = f"/admin/whatsapp/messagetemplate/{template.pk}/change/"
    data = form_data(client.get(url).content.decode(), "messagetemplate_form")
    data["body_text"] = "Olá, {{1}}! Podemos continuar o atendimento?"
    data["parameter_count"] = "1"

    assert client.post(url, data).status_code == 302

    history = client.get(f"/admin/whatsapp/messagetemplate/{template.pk}/historico/")
    assert history.status_code == 200
    [latest, *_] = history.context["entries"]
    assert latest["actor"] == supervisor.username
    assert {field for field, _old, _new in latest["changes"]} >= {"texto", "parâmetros"}

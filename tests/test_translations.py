"""English is complete, and customers are always answered in pt-BR.

Every catalogue (``ispsupport.catalogues``: the project's and one per app) must hold every
string its source marks — extracted afresh here with makemessages into a temporary folder —
each with a real English translation (none empty, none fuzzy, the same placeholders), and its
compiled .mo must be the .po as it is now. A page asked for in English shows English and the
same page in pt-BR shows Portuguese. Whatever language the staff member reads, what goes to
the customer (a DPO's answer from the admin, a bot reply, the CSAT survey when an agent
closes) stays pt-BR (``ispsupport.language``).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings
from django.utils import timezone, translation

from ispsupport import catalogues as cat

CATALOGUES = cat.catalogues()
PLACEHOLDER = re.compile(r"%(?:\([A-Za-z_]+\))?[sdif%]")


def test_every_app_of_ours_and_the_project_have_an_english_catalogue():
    base = Path(settings.BASE_DIR)
    ours = {c.label for c in apps.get_app_configs() if Path(c.path).parent == base}
    names = {c.name for c in CATALOGUES}
    assert names == (ours - {"ispsupport"}) | {"project"}
    for catalogue in CATALOGUES:
        assert catalogue.po_path.exists(), catalogue.po_path
        assert catalogue.mo_path.exists(), catalogue.mo_path


@pytest.mark.skipif(shutil.which("xgettext") is None, reason="GNU gettext is not installed")
@pytest.mark.parametrize("catalogue", CATALOGUES, ids=lambda c: c.name)
def test_the_catalogue_holds_exactly_the_strings_the_source_marks(catalogue, tmp_path):
    fresh = cat.po_read(cat.catalogue_extract(catalogue=catalogue, locale_dir=tmp_path))
    committed = [e for e in cat.po_read(catalogue.po_path) if not e.obsolete]

    in_source = {e.key for e in fresh}
    in_po = {e.key for e in committed}
    assert sorted(in_source - in_po, key=str) == [], (
        f"not in {catalogue.po_path}: run manage.py update_catalogues and translate"
    )
    assert sorted(in_po - in_source, key=str) == [], "no longer in the source"
    plural = {e.key: e.msgid_plural for e in fresh}
    assert {e.key: e.msgid_plural for e in committed} == plural


@pytest.mark.parametrize("catalogue", CATALOGUES, ids=lambda c: c.name)
def test_every_entry_has_a_real_english_translation(catalogue):
    entries = [e for e in cat.po_read(catalogue.po_path) if not e.obsolete]
    assert entries
    assert [e.msgid for e in entries if e.fuzzy] == []
    assert [e.msgid for e in entries if not e.translated] == []
    for entry in entries:
        for n, text in enumerate(entry.msgstr):
            found = PLACEHOLDER.findall(text)
            if entry.msgid_plural is None:
                assert sorted(found) == sorted(PLACEHOLDER.findall(entry.msgid)), entry.msgid
            elif n == 0:  # "one conversation" may leave the count out
                both = PLACEHOLDER.findall(entry.msgid + entry.msgid_plural)
                assert set(found) <= set(both), entry.msgid
            else:
                assert sorted(found) == sorted(PLACEHOLDER.findall(entry.msgid_plural))
            assert text.startswith(" ") == entry.msgid.startswith(" "), entry.msgid


def test_a_string_in_two_catalogues_reads_the_same_in_both():
    """Django merges the catalogues and the first one wins (the project's, then INSTALLED_APPS
    order): a different English for the same msgid elsewhere would never be shown."""
    english: dict = {}
    for catalogue in CATALOGUES:
        for entry in cat.po_read(catalogue.po_path):
            english.setdefault(entry.key, {})[catalogue.name] = tuple(entry.msgstr)
    differing = {key: by for key, by in english.items() if len(set(by.values())) > 1}
    assert differing == {}


@pytest.mark.parametrize("catalogue", CATALOGUES, ids=lambda c: c.name)
def test_the_compiled_catalogue_is_the_po_as_it_is_now(catalogue):
    compiled = cat.mo_read(catalogue.mo_path)
    assert compiled == cat.po_as_mo(cat.po_read(catalogue.po_path)), (
        f"{catalogue.mo_path} is stale: run manage.py update_catalogues"
    )


def test_the_login_page_speaks_the_browsers_language(client):
    english = client.get("/accounts/login/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    portuguese = client.get("/accounts/login/", HTTP_ACCEPT_LANGUAGE="pt-BR").content.decode()

    assert 'lang="en"' in english and "Log in" in english
    assert "Entrar" not in english
    assert 'lang="pt-br"' in portuguese and "Entrar" in portuguese


def _verified(client, user):
    from django_otp import DEVICE_ID_SESSION_KEY

    from accounts.tests.helpers import verified_device

    device = verified_device(user)
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client


@pytest.mark.django_db
def test_the_dpos_admin_follows_the_language_cookie(client, dpo):
    _verified(client, dpo)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    english = client.get("/admin/compliance/datasubjectrequest/").content.decode()
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "pt-br"
    portuguese = client.get("/admin/compliance/datasubjectrequest/").content.decode()

    for text in ("Data subject requests", "Open requests", "due soon", "LGPD and compliance"):
        assert text in english, text
    assert "Requisições de titulares" not in english
    for text in ("Requisições de titulares", "Requisições em aberto", "vencem em breve"):
        assert text in portuguese, text


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kind", "action", "note"),
    [
        # Verifying the identity answers a confirmation at once (Art. 19 I)…
        ("confirmation", "verify_identity_document", "1 request(s) with verified identity."),
        # …and the DPO may answer one with the simplified confirmation themselves.
        ("access", "answer_confirmation", "1 answer(s) sent."),
    ],
)
def test_a_dpo_reading_english_still_answers_the_customer_in_portuguese(
    client, dpo, customer, kind, action, note
):
    from compliance.models import DataSubjectRequest
    from compliance.services import dsr_open, dsr_verify_identity
    from conversations.models import Message
    from conversations.tests.factories import ConversationFactory

    conversation = ConversationFactory(customer=customer, last_customer_message_at=timezone.now())
    request = dsr_open(
        customer=customer, kind=kind, intake_channel="email", answer_channel="whatsapp"
    )
    if action != "verify_identity_document":
        dsr_verify_identity(request=request, method="document", actor=dpo)
    _verified(client, dpo)

    response = client.post(
        "/admin/compliance/datasubjectrequest/",
        {"action": action, "_selected_action": [request.pk]},
        HTTP_ACCEPT_LANGUAGE="en",
        follow=True,
    )

    assert [str(m) for m in response.context["messages"]] == [note]  # the DPO reads English
    request.refresh_from_db()
    assert request.status == DataSubjectRequest.Status.ANSWERED
    sent = Message.objects.get(conversation=conversation, direction="out")
    assert sent.text == request.answer_text
    assert sent.text.startswith("Sim, ") and "Conversas (protocolos)" in sent.text
    assert "personal data" not in sent.text and "Conversations" not in sent.text


@pytest.mark.django_db
def test_the_bot_answers_in_portuguese_even_when_queued_from_an_english_request(customer):
    from bot.tasks import handle_inbound_message
    from bot.tests.conftest import make_inbound
    from conversations.models import Message
    from conversations.tests.factories import ConversationFactory

    conversation = ConversationFactory(customer=customer)
    message = make_inbound(conversation, "oi")
    with translation.override("en"):
        handle_inbound_message.delay(message.pk)  # eager: runs inside this "request"
        assert translation.get_language() == "en"  # the caller's language comes back

    replies = Message.objects.filter(conversation=conversation, direction="out", sender_kind="bot")
    texts = " ".join(m.text for m in replies)
    assert texts, "the bot did not answer"
    assert "Olá!" in texts and "protocolo" in texts
    assert "Hello" not in texts and "protocol is" not in texts


@pytest.mark.django_db
def test_the_agents_console_speaks_english_when_asked(client, agent, customer, team_support):
    from conversations.tests.conftest import login
    from conversations.tests.factories import ConversationFactory

    conversation = ConversationFactory(
        customer=customer, team=team_support, state="assigned", assigned_agent=agent
    )
    login(client, agent)
    page = client.get(f"/console/c/{conversation.pk}/", HTTP_ACCEPT_LANGUAGE="en")

    html = page.content.decode()
    assert page.status_code == 200
    for text in ("Search conversations", "Keyboard shortcuts", "Transfer", "Close", "Send"):
        assert text in html, text
    for text in ("Buscar conversas", "Atalhos de teclado", "Transferir", "Enviar"):
        assert text not in html, text
    # what console.js writes itself (connection state, typing, clocks) comes from the page
    assert '<html lang="en">' in html
    assert 'data-live="live"' in html
    assert 'data-typing="{name} is typing in this conversation…"' in html
    portuguese = client.get(f"/console/c/{conversation.pk}/", HTTP_ACCEPT_LANGUAGE="pt-BR")
    for text in ("Buscar conversas", "Atalhos de teclado", "Transferir", "Enviar", "ao vivo"):
        assert text in portuguese.content.decode(), text


@pytest.mark.django_db
def test_words_kept_in_tables_are_extracted_and_translated_too():
    """Labels held in a dict and translated where shown (``gettext_noop``) reach the catalogue:
    the inbox preview of a photo and the reason of an assignment read in English."""
    from conversations.templatetags.console import preview, reason_label
    from conversations.tests.factories import ConversationFactory, MessageFactory

    photo = MessageFactory(conversation=ConversationFactory(), type="image", text="")
    with translation.override("en"):
        assert preview(photo) == "📷 Image"
        assert reason_label("auto_least_loaded") == "automatic: the agent with fewest conversations"
    with translation.override("pt-br"):
        assert preview(photo) == "📷 Imagem"
        assert reason_label("auto_least_loaded") == "automática: atendente com menos conversas"


@pytest.mark.django_db
def test_an_agent_reading_english_closes_and_the_customer_is_surveyed_in_portuguese(
    client, agent, customer, team_support
):
    from conversations.models import Message
    from conversations.tests.conftest import login
    from conversations.tests.factories import ConversationFactory

    conversation = ConversationFactory(
        customer=customer,
        team=team_support,
        state="assigned",
        assigned_agent=agent,
        last_customer_message_at=timezone.now(),
    )
    login(client, agent)
    response = client.post(
        f"/console/c/{conversation.pk}/close/",
        {"resolution": "resolved"},
        HTTP_ACCEPT_LANGUAGE="en",
        HTTP_X_REQUESTED_WITH="fetch",
    )

    assert response.status_code == 200
    survey = Message.objects.get(conversation=conversation, direction="out")
    rows = survey.payload["interactive"]["action"]["sections"][0]["rows"]
    assert "Como você avalia o atendimento?" in survey.text
    assert rows[0]["title"] == "5 · Excelente"
    assert "Excellent" not in json.dumps(survey.payload) and "How" not in survey.text

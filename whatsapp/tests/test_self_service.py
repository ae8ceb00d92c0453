"""Self-service with the ISP's ERP, as a customer meets it on WhatsApp.

Every turn is a signed webhook through the real endpoint; the bot decides in the (eager) Celery
task and its replies leave through the outbox to the Graph simulator over loopback, where these
tests read what the customer's phone received. The demo ERP is seeded by ``seed_isp_demo``
(the fixed cases of isp/seed.py); the REST adapter talks to the fake ERP over loopback.
"""

from __future__ import annotations

import io
import json
import logging
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from bot import client as gemini_client
from bot.fake_gemini import FakeGemini
from bot.replies import RESOLVED_NO, RESOLVED_YES
from conversations.identity import customers_by_identity
from conversations.models import Conversation, ConversationEvent
from isp import formatting
from isp.models import Contract, ServiceOrder, TrustUnlock, VisitWindow
from isp.seed import seed_isp_demo
from isp.tests.fake_erp import *  # noqa: F403
from whatsapp.testing import envelope, new_wamid, signed_post, text_message
from whatsapp.tests.log_capture import *  # noqa: F403
from whatsapp.tests.loopback import *  # noqa: F403

pytestmark = pytest.mark.django_db

ONE_CONTRACT = "5511999990001"  # contract 10001, online
HOUSEHOLD = "5511999990002"  # contracts 10002 and 10003 share this number
STRANGER = "5511988880000"  # on no contract
CARLOS_CPF = "529.982.247-25"  # contracts 10004 (blocked) and 10005 (offline)
FORMER_CPF = "111.444.777-35"  # only a cancelled contract
UNKNOWN_CPF = "123.456.789-09"  # valid digits, nobody's


@pytest.fixture
def fake_gemini(settings):
    """The Gemini fake over loopback with the real client pointed at it."""
    from ispsupport import ratelimit

    with FakeGemini(api_key="test-gemini-key") as fake:
        settings.GEMINI_API_KEY = "test-gemini-key"
        settings.GEMINI_BASE_URL = fake.base_url
        settings.GEMINI_TIMEOUT_SECONDS = 2.0
        settings.GEMINI_REQUESTS_PER_MINUTE = 1000
        ratelimit.reset_backend()
        yield fake
    gemini_client.close_clients()


@pytest.fixture
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


@pytest.fixture
def demo_erp(settings, team_support, team_billing, media_root):
    settings.ERP_ADAPTER = "demo"
    seed_isp_demo()


class Phone:
    """A customer's WhatsApp: sends through the signed webhook, reads what the simulator got."""

    def __init__(self, client, graph, capture, wa_id: str) -> None:
        self.client, self.graph, self.capture, self.wa_id = client, graph, capture, wa_id
        self.seen = 0

    def _post(self, message: dict) -> list[dict]:
        with self.capture(execute=True):
            response = signed_post(self.client, envelope(messages=[message]))
        assert response.status_code == 200
        self.graph.wait_idle(5)
        sent = [b for b in self.graph.sent() if b["to"] == "+" + self.wa_id]
        new, self.seen = sent[self.seen :], len(sent)
        return new

    def say(self, text: str) -> list[dict]:
        return self._post(text_message(wa_id=self.wa_id, text=text))

    def tap(self, reply_id: str, title: str = "ok", *, kind: str = "button_reply") -> list[dict]:
        message = {
            "from": self.wa_id,
            "id": new_wamid(),
            "timestamp": str(int(timezone.now().timestamp())),
            "type": "interactive",
            "interactive": {"type": kind, kind: {"id": reply_id, "title": title}},
        }
        return self._post(message)

    @property
    def conversation(self) -> Conversation:
        return Conversation.objects.get(customer__in=customers_by_identity(wa_id=self.wa_id))


@pytest.fixture
def phone(client, graph, django_capture_on_commit_callbacks, settings):
    # Turns here follow each other in milliseconds; a person takes seconds, which is what
    # Meta's pair rate (a burst of ~5, then one per 6 s) is sized for. Tested in whatsapp/.
    settings.WHATSAPP_PAIR_BURST = 100

    def make(wa_id: str) -> Phone:
        return Phone(client, graph, django_capture_on_commit_callbacks, wa_id)

    return make


def text_of(body: dict) -> str:
    if body["type"] == "text":
        return body["text"]["body"]
    if body["type"] == "interactive":
        return body["interactive"]["body"]["text"]
    return body.get(body["type"], {}).get("caption", "")


def all_text(bodies: list[dict]) -> str:
    return "\n".join(text_of(b) for b in bodies)


def rows(body: dict) -> list[dict]:
    assert body["type"] == "interactive" and body["interactive"]["type"] == "list"
    return [r for s in body["interactive"]["action"]["sections"] for r in s["rows"]]


def button_ids(body: dict) -> list[str]:
    assert body["interactive"]["type"] == "button"
    return [b["reply"]["id"] for b in body["interactive"]["action"]["buttons"]]


def open_invoice(ref: str):
    return Contract.objects.get(ref=ref).invoices.filter(status="open").order_by("due_date").first()


# --- identity before data ---------------------------------------------------------------------


def test_an_unidentified_customer_gets_no_bill_data_and_is_asked_for_the_cpf(demo_erp, phone):
    stranger = phone(STRANGER)

    sent = stranger.say("preciso da segunda via do boleto")

    text = all_text(sent)
    assert "R$" not in text and "PIX" not in text.upper().replace("PIX COPIA", "")
    assert not any(b["type"] == "document" for b in sent)
    assert "CPF do titular" in text_of(sent[-1])
    assert button_ids(sent[-1]) == ["menu.human"]  # a person is one tap away


def test_a_wrong_cpf_is_refused_without_revealing_whether_it_exists(demo_erp, phone, settings):
    settings.ISP_CPF_MAX_ATTEMPTS = 4
    stranger = phone(STRANGER)
    stranger.say("segunda via do boleto")

    invalid = stranger.say("123.456.789-00")  # check digits wrong
    unknown = stranger.say(UNKNOWN_CPF)  # valid, nobody's
    former = stranger.say(FORMER_CPF)  # a former customer's (cancelled contract only)

    assert "não é válido" in text_of(invalid[-1])
    refusal_unknown, refusal_former = text_of(unknown[-1]), text_of(former[-1])
    assert refusal_unknown.startswith("Não consegui confirmar seus dados com esse CPF")
    # Same words for "nobody's" and "a former customer's" (only the attempts counter moves).
    assert refusal_unknown.split("(")[0] == refusal_former.split("(")[0]
    for bodies in (invalid, unknown, former):
        assert "R$" not in all_text(bodies) and "10006" not in all_text(bodies)
    # The fourth wrong try (ISP_CPF_MAX_ATTEMPTS): a person takes over.
    stranger.say("98765432100")
    conversation = stranger.conversation
    assert conversation.state == Conversation.State.WAITING
    event = ConversationEvent.objects.filter(
        conversation=conversation, kind=ConversationEvent.Kind.ESCALATED
    ).latest("pk")
    assert event.data["reason"] == "bot:identity_failed"


def test_a_customer_with_two_contracts_chooses_one_and_gets_its_bill_with_pix(demo_erp, phone):
    carlos = phone(STRANGER)
    carlos.say("quero a 2 via da fatura")

    sent = carlos.say(f"meu cpf é {CARLOS_CPF}")

    choice = sent[-1]
    assert [r["id"] for r in rows(choice)] == ["isp.contract.0", "isp.contract.1"]
    assert [r["title"] for r in rows(choice)] == ["Contrato 10004", "Contrato 10005"]
    assert "bloqueado" in rows(choice)[0]["description"]
    assert "R$" not in all_text(sent)

    sent = carlos.tap("isp.contract.1", "Contrato 10005", kind="list_reply")

    invoice = open_invoice("10005")
    texts = [text_of(b) for b in sent if b["type"] == "text"]
    (document,) = [b for b in sent if b["type"] == "document"]
    summary = document["document"]["caption"]
    assert "contrato 10005" in summary
    assert formatting.brl(invoice.amount) in summary  # R$ 189,90
    assert formatting.day(invoice.due_date) in summary
    assert invoice.pix_code in texts  # alone in its message: one long press copies it
    assert invoice.digitable_line in texts
    assert open_invoice("10004").pix_code not in all_text(sent)  # nothing of the other one
    assert document["document"]["filename"] == f"fatura-{invoice.number}.pdf"
    (upload,) = carlos.graph.uploads()
    media = carlos.graph.media[document["document"]["id"]]
    assert media.data.startswith(b"%PDF-1.4") and upload.body["type"] == "application/pdf"
    assert button_ids(sent[-1]) == [RESOLVED_YES, RESOLVED_NO]

    carlos.tap(RESOLVED_YES, "Sim, resolveu")
    assert carlos.conversation.resolution == Conversation.Resolution.RESOLVED_BY_BOT


def test_a_household_number_asks_which_contract_without_a_cpf(demo_erp, phone):
    family = phone(HOUSEHOLD)

    greeting, *sent = family.say("2 via do boleto por favor")

    assert "Privacidade" in text_of(greeting)
    assert "CPF" not in all_text(sent)
    assert [r["title"] for r in rows(sent[-1])] == ["Contrato 10002", "Contrato 10003"]

    sent = family.tap("isp.contract.0", "Contrato 10002", kind="list_reply")
    assert open_invoice("10002").pix_code in [text_of(b) for b in sent]


def test_a_contract_choice_not_offered_to_this_conversation_is_refused(demo_erp, phone):
    family = phone(HOUSEHOLD)
    family.say("segunda via")

    sent = family.tap("isp.contract.7", "Contrato 99", kind="list_reply")

    assert "expirou" in text_of(sent[-1])
    assert "R$" not in all_text(sent)


# --- trust unlock ---------------------------------------------------------------------------------


def test_trust_unlock_is_granted_once_and_refused_again_within_the_policy(
    demo_erp, phone, settings
):
    settings.ISP_TRUST_UNLOCK_DAYS = 3
    settings.ISP_TRUST_UNLOCK_INTERVAL_DAYS = 30
    carlos = phone(STRANGER)
    carlos.say("paguei e a internet continua bloqueada, quero o desbloqueio")
    carlos.say(CARLOS_CPF)
    sent = carlos.tap("isp.contract.0", "Contrato 10004", kind="list_reply")
    offer = sent[-1]
    assert "bloqueado por falta de pagamento" in text_of(offer)
    assert "3 dias" in text_of(offer) and "30 dias" in text_of(offer)
    assert button_ids(offer) == ["isp.unlock.yes", "isp.action.bill", "menu.human"]

    sent = carlos.tap("isp.unlock.yes", "Liberar agora")

    grant = TrustUnlock.objects.get(contract_ref="10004")
    assert abs(grant.until - grant.granted_at - timedelta(days=3)) < timedelta(seconds=5)
    assert formatting.day_and_time(grant.until) in text_of(sent[-1])
    assert button_ids(sent[-1])[0] == RESOLVED_YES
    contract = Contract.objects.get(ref="10004")
    assert not contract.blocked_now and contract.connection == "online"

    carlos.say("quero desbloquear de novo")
    sent = carlos.tap("isp.contract.0", "Contrato 10004", kind="list_reply")

    refusal = text_of(sent[-1])
    assert "já foi usado em " + formatting.day(grant.granted_at) in refusal
    assert formatting.day(grant.granted_at + timedelta(days=30)) in refusal
    assert button_ids(sent[-1]) == ["isp.action.bill", "menu.human"]
    assert TrustUnlock.objects.filter(contract_ref="10004").count() == 1

    sent = carlos.tap("isp.action.bill", "Enviar 2ª via")  # same contract, no new question
    assert open_invoice("10004").pix_code in [text_of(b) for b in sent]


# --- connection status, visits, plan -------------------------------------------------------------


def test_connection_status_says_since_when_it_is_online(demo_erp, phone):
    ana = phone(ONE_CONTRACT)

    sent = ana.say("estou sem internet")

    since = Contract.objects.get(ref="10001").connection_since
    assert f"está online desde {formatting.day_and_time(since)}" in text_of(
        sent[-1]
    )  # São Paulo time
    assert button_ids(sent[-1]) == [RESOLVED_YES, RESOLVED_NO]


def test_an_offline_connection_offers_a_visit_that_books_a_window(demo_erp, phone):
    carlos = phone(STRANGER)
    carlos.say("estou sem internet")  # unknown number: the knowledge base helps, no CPF asked
    carlos.say("quero agendar uma visita técnica")
    carlos.say(CARLOS_CPF)
    sent = carlos.tap("isp.contract.1", "Contrato 10005", kind="list_reply")

    windows = rows(sent[-1])
    assert 0 < len(windows) <= 10 and all(len(r["title"]) <= 24 for r in windows)
    first = VisitWindow.objects.filter(starts_at__gt=timezone.now()).order_by("starts_at")[0]
    assert windows[0]["title"] == formatting.window_label(first.starts_at, first.ends_at)

    sent = carlos.tap("isp.window.0", windows[0]["title"], kind="list_reply")

    order = ServiceOrder.objects.get(contract__ref="10005")
    assert order.window == first
    first.refresh_from_db()
    assert first.booked == 1
    confirmation = text_of(sent[-1])
    assert formatting.window_sentence(first.starts_at, first.ends_at) in confirmation
    assert order.number in confirmation
    assert button_ids(sent[-1]) == [RESOLVED_YES, RESOLVED_NO]

    sent = carlos.tap(RESOLVED_NO, "Não, quero atendente")
    conversation = carlos.conversation
    assert conversation.state == Conversation.State.WAITING
    assert conversation.team.slug == "suporte"  # the visit's team


def test_plan_information_for_an_identified_number(demo_erp, phone):
    ana = phone(ONE_CONTRACT)

    sent = ana.say("qual é o meu plano?")

    body = text_of(sent[-1])
    assert "Fibra 300 Mega" in body and "R$ 99,90 por mês" in body
    assert button_ids(sent[-1]) == [RESOLVED_YES, RESOLVED_NO]


def test_a_customer_imported_from_the_erp_export_is_identified_by_the_number(
    settings, team_support, team_billing, media_root, phone, tmp_path
):
    """The ISP imports its base (manage.py import_customers) and a customer who never wrote
    before is identified by the number the ERP had in the old 8-digit spelling."""
    settings.ERP_ADAPTER = "demo"
    export = tmp_path / "base.csv"
    export.write_text(
        "contrato;titular;cpf;telefones;plano;situacao;cidade;bairro;mensalidade\n"
        "77001;Rosa Amaral;363.309.466-04;(21) 8765-1234;Fibra 700 Mega;ativo;Niterói;Icaraí;"
        "149,90\n",
        encoding="utf-8",
    )
    call_command("import_customers", str(export), "--no-progress", stdout=io.StringIO())
    rosa = phone("5521987651234")

    sent = rosa.say("qual é o meu plano?")

    body = text_of(sent[-1])
    assert "Fibra 700 Mega" in body and "R$ 149,90 por mês" in body and "Icaraí" in body


# --- the REST adapter and its failures ------------------------------------------------------------


def test_the_bill_through_the_rest_adapter(erp_rest, phone, team_billing, media_root):
    erp_rest.add_contract("ERP-77", cpf="52998224725", phones=["+" + ONE_CONTRACT])
    invoice = erp_rest.add_invoice("ERP-77")
    ana = phone(ONE_CONTRACT)

    sent = ana.say("me manda o boleto")

    texts = [text_of(b) for b in sent]
    assert invoice["pix_code"] in texts and invoice["digitable_line"] in texts
    (document,) = [b for b in sent if b["type"] == "document"]
    assert "R$ 99,90" in document["document"]["caption"]
    # Our cached copy, with the region tags outages and campaigns query.
    copy = Contract.objects.get(ref="ERP-77")
    assert (copy.source, copy.olt, copy.neighbourhood) == ("erp", "OLT-CAM-01", "Cambuí")


def test_bad_json_from_the_erp_hands_the_customer_to_a_person(
    erp_rest, phone, team_billing, media_root
):
    erp_rest.add_contract("ERP-77", cpf="52998224725", phones=["+" + ONE_CONTRACT])
    erp_rest.bad_json()
    ana = phone(ONE_CONTRACT)

    sent = ana.say("me manda o boleto")

    assert "Não consegui consultar o sistema do provedor" in text_of(sent[-1])
    conversation = ana.conversation
    assert (conversation.state, conversation.team) == (Conversation.State.WAITING, team_billing)
    event = ConversationEvent.objects.filter(
        conversation=conversation, kind=ConversationEvent.Kind.ESCALATED
    ).latest("pk")
    assert event.data["reason"] == "bot:erp_unavailable"


def test_an_erp_that_is_down_hands_off_too(erp_rest, phone, team_billing, media_root):
    erp_rest.fail(503, times=3)
    ana = phone(ONE_CONTRACT)

    ana.say("segunda via")

    assert ana.conversation.state == Conversation.State.WAITING


# --- the CPF stays here ---------------------------------------------------------------------------


@pytest.fixture
def raw_logs():
    """Every log record at DEBUG, formatted *without* the masking filter: what we emit."""
    buffer = io.StringIO()

    class Capture(logging.Handler):
        def emit(self, record):
            buffer.write(f"{record.getMessage()} {record.__dict__!r}\n")

    handler = Capture(level=logging.DEBUG)
    root = logging.getLogger()
    old = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield buffer
    root.removeHandler(handler)
    root.setLevel(old)


def test_the_cpf_never_reaches_the_logs_nor_the_model(demo_erp, phone, raw_logs, fake_gemini):
    carlos = phone(STRANGER)
    carlos.say("quero a segunda via do boleto")
    calls_before = len(fake_gemini.requests)
    assert calls_before >= 1  # the model is in play for ordinary turns

    carlos.say(f"meu cpf é {CARLOS_CPF}")
    carlos.tap("isp.contract.0", "Contrato 10004", kind="list_reply")

    digits = CARLOS_CPF.replace(".", "").replace("-", "")
    output = raw_logs.getvalue()
    assert output  # the flow logged
    assert CARLOS_CPF not in output and digits not in output
    assert len(fake_gemini.requests) == calls_before  # the CPF turn never called the model
    for request in fake_gemini.requests:
        dumped = json.dumps(request.body, ensure_ascii=False)
        assert digits not in dumped and CARLOS_CPF not in dumped


def test_a_whole_self_service_turn_logs_none_of_the_customers_data(demo_erp, phone, logs):
    """Issue 6 ("nothing personal in logs") on the ERP flow: CPF, contract choice, bill with
    PIX; neither the log files nor any record carry the number, the CPF, the holder's name
    and address, the bill's codes or what the customer wrote."""
    carlos = phone(STRANGER)
    said = ["quero a segunda via do boleto", f"meu cpf é {CARLOS_CPF}"]
    for text in said:
        carlos.say(text)
    sent = carlos.tap("isp.contract.1", "Contrato 10005", kind="list_reply")
    invoice = open_invoice("10005")
    assert invoice.pix_code in [text_of(b) for b in sent]  # the flow ran to the bill

    contract = Contract.objects.get(ref="10005")
    digits = CARLOS_CPF.replace(".", "").replace("-", "")
    personal = [
        STRANGER,
        "+" + STRANGER,
        CARLOS_CPF,
        digits,
        "Cliente Teste",  # the WhatsApp profile name
        contract.holder_name,
        contract.address,
        invoice.digitable_line,
        invoice.pix_code,
        *said,
    ]
    assert logs.written and logs.raw  # the flow logged
    assert not logs.leaks(personal, masked_only=(STRANGER, "+" + STRANGER, CARLOS_CPF, digits))

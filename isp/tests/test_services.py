"""isp's rules on the demo ERP: identity, trust-unlock policy, region queries, privacy, seed."""

from __future__ import annotations

import shutil
import subprocess
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from compliance.registry import ErasureReport, get
from conftest import on_postgres
from conversations.tests.factories import ConversationFactory, CustomerFactory
from isp import formatting, services
from isp.erp import get_adapter
from isp.models import Contract, ContractPhone, ConversationContract, TrustUnlock
from isp.seed import pix_code, seed_isp_demo
from isp.selectors import Region, contract_phones, contracts_in_region, contracts_segment
from isp.tests.fake_erp import *  # noqa: F403

pytestmark = pytest.mark.django_db

CARLOS = "52998224725"


@pytest.fixture
def demo(settings):
    settings.ERP_ADAPTER = "demo"
    seed_isp_demo()


def conversation_for(wa_id: str):
    customer = CustomerFactory(wa_id=wa_id, phone_e164="+" + wa_id)
    return ConversationFactory(customer=customer)


def test_the_cpf_and_phones_are_encrypted_at_rest_and_found_by_blind_index(demo):
    with connection.cursor() as cursor:
        cursor.execute("SELECT cpf, holder_name, address FROM isp_contract WHERE ref = '10004'")
        cpf, name, address = cursor.fetchone()
        cursor.execute("SELECT phone FROM isp_contractphone")
        phones = [row[0] for row in cursor.fetchall()]
    assert CARLOS not in cpf and "Carlos" not in name and "," not in address
    assert all(not p.startswith("+55") for p in phones)
    assert [c.ref for c in get_adapter().contracts_by_cpf(CARLOS)] == ["10004", "10005"]
    assert [c.ref for c in get_adapter().contracts_by_phone("+5511999990002")] == [
        "10002",
        "10003",
    ]


def test_a_household_number_gives_access_to_each_of_its_contracts(demo):
    conversation = conversation_for("5511999990002")
    state = services.identity_for(conversation=conversation)

    contracts = services.identity_by_phone(conversation=conversation, state=state)

    assert [c.ref for c in contracts] == ["10002", "10003"]
    state.refresh_from_db()
    assert (state.method, state.contract_refs, state.selected_ref) == (
        "phone",
        ["10002", "10003"],
        "",
    )
    assert not services.identity_select(state=state, ref="10004")  # not theirs
    assert services.identity_select(state=state, ref="10003")


def test_cpf_checks_count_every_try_and_lock_after_the_limit(demo, settings):
    settings.ISP_CPF_MAX_ATTEMPTS = 3
    state = services.identity_for(conversation=conversation_for("5511988880000"))

    assert services.identity_check_cpf(state=state, cpf="12345678900").outcome == "invalid"
    assert services.identity_check_cpf(state=state, cpf="11144477735").outcome == "no_match"
    last = services.identity_check_cpf(state=state, cpf=CARLOS)  # right, but the 3rd try

    assert last.outcome == "matched" and [c.ref for c in last.contracts] == ["10004", "10005"]
    state.refresh_from_db()
    assert state.method == "cpf" and state.cpf_attempts == 0
    assert CARLOS not in str(ConversationContract.objects.values().get(pk=state.pk))


def test_the_fourth_try_is_refused_even_with_the_right_cpf(demo, settings):
    settings.ISP_CPF_MAX_ATTEMPTS = 3
    state = services.identity_for(conversation=conversation_for("5511988880000"))
    for wrong in ("12345678909", "12345678909"):
        services.identity_check_cpf(state=state, cpf=wrong)
    assert services.identity_check_cpf(state=state, cpf="12345678909").outcome == "locked"

    assert services.identity_check_cpf(state=state, cpf=CARLOS).outcome == "locked"


def test_an_identity_expires(demo, settings):
    conversation = conversation_for("5511999990001")
    state = services.identity_for(conversation=conversation)
    services.identity_by_phone(conversation=conversation, state=state)
    ConversationContract.objects.filter(pk=state.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )

    state = services.identity_for(conversation=conversation)

    assert not state.identified and state.contract_refs == []


def test_trust_unlock_policy_once_per_interval(demo, settings):
    settings.ISP_TRUST_UNLOCK_DAYS = 2
    settings.ISP_TRUST_UNLOCK_INTERVAL_DAYS = 30
    conversation = conversation_for("5511988880000")
    contract = get_adapter().contract("10004")

    first = services.trust_unlock_request(conversation=conversation, contract=contract)
    second = services.trust_unlock_request(conversation=conversation, contract=contract)

    assert first.outcome == "granted"
    assert timedelta(days=1, hours=23) < first.until - timezone.now() <= timedelta(days=2)
    assert second.outcome == "refused_policy"
    assert second.next_at - second.last_at == timedelta(days=30)
    # 31 days later the policy allows it again.
    TrustUnlock.objects.update(granted_at=timezone.now() - timedelta(days=31))
    Contract.objects.filter(ref="10004").update(trust_unlocked_until=None)
    third = services.trust_unlock_request(conversation=conversation, contract=contract)
    assert third.outcome == "granted"
    assert TrustUnlock.objects.count() == 2


def test_an_active_contract_is_not_unlocked(demo):
    contract = get_adapter().contract("10005")
    outcome = services.trust_unlock_request(
        conversation=conversation_for("5511988880000"), contract=contract
    )
    assert outcome.outcome == "not_blocked"
    assert not TrustUnlock.objects.exists()


def test_the_last_free_slot_of_a_window_is_booked_once(demo):
    window = get_adapter().visit_windows("10005", days=7)[0]
    services.visit_book(ref="10005", window_id=window.id)
    services.visit_book(ref="10001", window_id=window.id)  # capacity 2

    from isp.erp import ErpConflict

    with pytest.raises(ErpConflict):
        services.visit_book(ref="10002", window_id=window.id)
    assert window.id not in [w.id for w in get_adapter().visit_windows("10002", days=7)]


# --- region/node queries (outages, campaigns) -----------------------------------------------


def test_contracts_in_a_region_by_any_tag(demo):
    by_hood = contracts_in_region(Region(city="são paulo", neighbourhood="MOEMA"))
    assert sorted(by_hood.values_list("ref", flat=True)) == ["10002", "10003"]
    olt = Contract.objects.get(ref="10004").olt
    behind_olt = contracts_in_region(Region(olt=olt), statuses=["active", "blocked"])
    assert "10004" in behind_olt.values_list("ref", flat=True)
    assert all(c.olt == olt for c in behind_olt)
    assert not contracts_in_region().exists()  # an outage must say where


def test_a_campaign_segment_and_its_phones(demo):
    segment = contracts_segment(
        plans=["Fibra 500 Mega"], cities=["São Paulo"], statuses=["active"]
    ).filter(ref__in=["10001", "10002", "10003"])
    assert list(segment.values_list("ref", flat=True)) == ["10002"]
    assert contract_phones(segment) == {"10002": ["+5511999990002"]}


# --- privacy ---------------------------------------------------------------------------------


def test_export_and_erasure_keep_the_erps_records_and_drop_our_copies(erp_rest):
    erp_rest.add_contract("ERP-9", cpf=CARLOS, phones=["+5511999990009"])
    conversation = conversation_for("5511999990009")
    state = services.identity_for(conversation=conversation)
    services.identity_by_phone(conversation=conversation, state=state)
    copy = Contract.objects.get(ref="ERP-9")
    assert copy.source == "erp" and copy.phones.count() == 1
    demo_row = Contract(ref="D-1", plan_name="Fibra 100 Mega", monthly_price=Decimal("79.90"))
    demo_row.set_cpf(CARLOS)
    demo_row.save()
    provider = get("isp.contracts")

    exported = provider.export(conversation.customer)
    assert {c["ref"] for c in exported["isp_contracts"]} == {"ERP-9"}
    assert exported["isp_identifications"][0]["contracts"] == ["ERP-9"]

    customer = conversation.customer
    customer.cpf = CARLOS
    report = ErasureReport()
    provider.erase(customer, report)

    assert not Contract.objects.filter(ref="ERP-9").exists()
    assert not ContractPhone.objects.exists()
    assert not ConversationContract.objects.exists()
    assert Contract.objects.filter(ref="D-1").exists()  # the (demo) ERP's own record stays
    assert report.deleted["isp.contract"] == 1 and report.held["isp.contract (ERP)"] == 1


def test_retention_purges_stale_copies_and_expired_identities(erp_rest):
    erp_rest.add_contract("ERP-9", cpf=CARLOS, phones=["+5511999990009"])
    conversation = conversation_for("5511999990009")
    state = services.identity_for(conversation=conversation)
    services.identity_by_phone(conversation=conversation, state=state)
    old = timezone.now() - timedelta(days=400)
    Contract.objects.update(synced_at=old)
    ConversationContract.objects.update(expires_at=old)

    counts = get("isp.contracts").purge(now=timezone.now(), batch_size=10, dry_run=False)

    assert counts == {"identity_states": 1, "erp_cache": 1, "trust_unlocks": 0}
    assert not Contract.objects.exists()


# --- seed, PDF, money ------------------------------------------------------------------------


def test_seed_is_idempotent_and_gives_demo_customers_contracts(settings):
    settings.DEBUG = True  # demo data only in development
    customer = CustomerFactory(wa_id="5521988887777", phone_e164="+5521988887777")
    call_command("seed_isp_demo")
    count = Contract.objects.count()
    call_command("seed_isp_demo")

    assert Contract.objects.count() == count
    assert (
        get_adapter().contracts_by_phone(customer.phone_e164)[0].ref == f"CT-{100000 + customer.pk}"
    )
    blocked = Contract.objects.get(ref="10004")
    assert blocked.invoices.filter(status="open", due_date__lt=timezone.localdate()).exists()


def test_the_pix_code_carries_a_valid_crc():
    code = pix_code(amount=Decimal("99.90"), key="chave-pix", txid="10001-202611")
    assert code.startswith("000201") and "540599.90" in code and "5802BR" in code
    from isp.seed import _crc16

    assert _crc16(code[:-4]) == code[-4:]


def test_the_bill_pdf_is_a_readable_pdf(demo, tmp_path):
    invoice = Contract.objects.get(ref="10001").invoices.filter(status="open").first()
    data = get_adapter().invoice_pdf("10001", invoice.number)

    assert data.startswith(b"%PDF-1.4") and data.rstrip().endswith(b"%%EOF")
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) not installed")
    path = tmp_path / "fatura.pdf"
    path.write_bytes(data)
    text = subprocess.run(
        ["pdftotext", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert "Segunda via da fatura" in text and formatting.brl(invoice.amount) in text
    assert "Vencimento" in text


@pytest.mark.parametrize(
    ("amount", "text"),
    [
        (Decimal("0"), "R$ 0,00"),
        (Decimal("99.9"), "R$ 99,90"),
        (Decimal("1234.56"), "R$ 1.234,56"),
        (Decimal("1234567.891"), "R$ 1.234.567,89"),
        (Decimal("-10"), "-R$ 10,00"),
    ],
)
def test_money_reads_as_brazilian_reais(amount, text):
    assert formatting.brl(amount) == text


def test_dates_read_in_sao_paulo_time():
    from datetime import UTC, datetime

    moment = datetime(2026, 11, 25, 2, 30, tzinfo=UTC)  # 23:30 the day before in São Paulo
    assert formatting.day_and_time(moment) == "24/11/2026 às 23:30"
    assert formatting.window_label(moment, moment + timedelta(hours=4)) == "ter 24/11 23h30–3h30"


def test_a_rest_adapter_without_its_address_fails_the_system_check(settings):
    from isp.checks import check_erp_settings

    settings.ERP_ADAPTER = "rest"
    settings.ERP_BASE_URL = ""
    assert [e.id for e in check_erp_settings()] == ["isp.E002"]
    settings.ERP_ADAPTER = "ixc"
    assert [e.id for e in check_erp_settings()] == ["isp.E001"]
    settings.ERP_ADAPTER = "demo"
    assert check_erp_settings() == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not on_postgres(), reason="row locks are proven on PostgreSQL")
def test_two_household_members_asking_at_once_get_one_trust_unlock(settings):
    import threading

    from django.db import transaction

    settings.ERP_ADAPTER = "demo"
    seed_isp_demo()
    conversations = [conversation_for("5511988880001"), conversation_for("5511988880002")]
    contract = get_adapter().contract("10004")
    barrier = threading.Barrier(2)
    outcomes: list[str] = []
    errors: list[BaseException] = []

    def ask(conversation):
        try:
            barrier.wait()
            with transaction.atomic():
                outcome = services.trust_unlock_request(
                    conversation=conversation, contract=contract
                )
            outcomes.append(outcome.outcome)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=ask, args=(c,)) for c in conversations]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    assert sorted(outcomes) == ["granted", "refused_policy"]
    assert TrustUnlock.objects.count() == 1

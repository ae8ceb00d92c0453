"""The REST adapter against the fake ERP over loopback: what it sends, what it makes of the
answers, and how it behaves when the ERP is slow, failing, or talking nonsense."""

from __future__ import annotations

import time
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from isp.erp import ErpBadResponse, ErpConflict, ErpUnavailable, get_adapter
from isp.erp.rest import breaker
from isp.tests.fake_erp import *  # noqa: F403
from isp.tests.fake_erp import TOKEN

pytestmark = pytest.mark.django_db

CPF = "52998224725"
PHONE = "+5519987650001"


@pytest.fixture
def erp(erp_rest):
    erp_rest.add_contract("C-1", cpf=CPF, phones=[PHONE], status="blocked")
    erp_rest.add_contract("C-2", cpf=CPF, phones=[], city="Santos", neighbourhood="Gonzaga")
    erp_rest.add_invoice("C-1")
    erp_rest.add_invoice("C-1", id="C-1-202610", due_date="2026-11-10", reference_month="2026-10")
    return erp_rest


def test_contracts_by_cpf_are_searched_by_post_with_the_token_and_parsed(erp):
    contracts = get_adapter().contracts_by_cpf(CPF)

    assert [c.ref for c in contracts] == ["C-1", "C-2"]
    first = contracts[0]
    assert first.status == "blocked" and first.holder_cpf == CPF
    assert first.plan.monthly_price == Decimal("99.90")
    assert (first.region.city, first.region.olt, first.region.box) == (
        "Campinas",
        "OLT-CAM-01",
        "CTO-C-1",
    )
    (request,) = erp.requests
    assert (request.method, request.path, request.body) == (
        "POST",
        "/v1/contracts/search",
        {"cpf": CPF},
    )
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert CPF not in request.path and not request.query  # identifiers never in the URL


def test_invoices_come_back_oldest_due_first_with_money_as_decimal(erp):
    invoices = get_adapter().open_invoices("C-1")

    assert [i.id for i in invoices] == ["C-1-202610", "C-1-202611"]
    assert invoices[0].due_date == date(2026, 11, 10)
    assert invoices[0].amount == Decimal("99.90")
    assert invoices[0].pix_code.startswith("000201")
    assert get_adapter().invoice_pdf("C-1", "C-1-202610").startswith(b"%PDF-")


def test_a_window_is_booked_once_even_when_the_first_answer_times_out(erp):
    start = timezone.now() + timedelta(days=1)
    erp.add_window("W-1", start)
    adapter = get_adapter()
    assert [w.id for w in adapter.visit_windows("C-1", days=7)] == ["W-1"]
    erp.delay(0.8, match="/service-orders")  # the ERP books, but answers after our timeout

    order = adapter.open_service_order("C-1", window_id="W-1", reason="technical_visit")

    assert order.number == "OS-ERP-0001" and order.window.id == "W-1"
    posts = [r for r in erp.requests if r.path.endswith("/service-orders")]
    assert len(posts) == 2  # the timed-out try and its retry…
    assert posts[0].headers["idempotency-key"] == posts[1].headers["idempotency-key"]
    assert len(erp.orders) == 1  # …booked one visit


def test_a_taken_window_is_a_conflict_not_an_outage(erp):
    with pytest.raises(ErpConflict) as excinfo:
        get_adapter().open_service_order("C-1", window_id="gone", reason="technical_visit")
    assert excinfo.value.reason == "window_unavailable"
    assert breaker().state() == "closed"


def test_trust_unlock_and_the_connection_it_frees(erp):
    adapter = get_adapter()
    assert adapter.connection_status("C-1").state == "blocked"

    result = adapter.trust_unlock("C-1", days=3)

    assert result.until > timezone.now() + timedelta(days=2)
    assert erp.requests[-1].body == {"days": 3}
    with pytest.raises(ErpConflict) as excinfo:
        adapter.trust_unlock("C-2", days=3)
    assert excinfo.value.reason == "not_blocked"


def test_an_unknown_contract_is_none(erp):
    assert get_adapter().contract("nope") is None


def test_5xx_is_retried_and_then_succeeds(erp):
    erp.fail(503, times=2)

    contracts = get_adapter().contracts_by_phone(PHONE)

    assert [c.ref for c in contracts] == ["C-1"]
    assert len(erp.requests) == 3
    assert breaker().state() == "closed"


def test_5xx_that_persists_is_unavailable_after_the_retries(erp):
    erp.fail(500, times=3)

    with pytest.raises(ErpUnavailable) as excinfo:
        get_adapter().contracts_by_phone(PHONE)

    assert excinfo.value.reason == "http_500"
    assert len(erp.requests) == 3  # one try and ERP_RETRIES=2 retries, no more


def test_a_slow_erp_times_out_within_the_bounds(erp, settings):
    settings.ERP_TIMEOUT_SECONDS = 0.3
    erp.delay(1.0, times=3)
    started = time.monotonic()

    with pytest.raises(ErpUnavailable) as excinfo:
        get_adapter().contract("C-1")

    assert excinfo.value.reason == "timeout"
    assert time.monotonic() - started < 2.0  # 3 × 0.3 s, not 3 × 1 s
    assert len(erp.requests) == 3


def test_the_breaker_opens_and_then_nothing_is_sent(erp, settings):
    settings.ERP_RETRIES = 0
    erp.fail(502, times=3)
    adapter = get_adapter()
    for _ in range(3):  # ERP_BREAKER_FAIL_MAX = 3
        with pytest.raises(ErpUnavailable):
            adapter.contract("C-1")
    assert breaker().state() == "open"
    sent = len(erp.requests)

    with pytest.raises(ErpUnavailable) as excinfo:
        adapter.contract("C-1")

    assert excinfo.value.reason == "breaker_open"
    assert len(erp.requests) == sent  # the ERP is left alone while the circuit is open


def test_bad_json_is_a_clear_error_and_counts_against_the_breaker(erp):
    erp.bad_json()

    with pytest.raises(ErpBadResponse) as excinfo:
        get_adapter().contract("C-1")

    assert excinfo.value.reason == "bad_json"
    assert breaker().failures() == 1


def test_a_contract_missing_its_plan_is_a_bad_response(erp):
    del erp.contracts["C-1"]["plan"]

    with pytest.raises(ErpBadResponse) as excinfo:
        get_adapter().contract("C-1")
    assert excinfo.value.reason == "plan_not_an_object"


def test_money_as_a_float_is_refused(erp):
    erp.contracts["C-1"]["plan"]["monthly_price"] = 99.9

    with pytest.raises(ErpBadResponse):
        get_adapter().contract("C-1")


def test_a_refused_token_is_unavailable_without_retries(erp, settings):
    settings.ERP_TOKEN = "wrong"

    with pytest.raises(ErpUnavailable) as excinfo:
        get_adapter().contract("C-1")

    assert excinfo.value.reason == "auth"
    assert len(erp.requests) == 1


def test_nothing_listening_is_unavailable(erp, settings):
    settings.ERP_BASE_URL = "http://127.0.0.1:9"

    with pytest.raises(ErpUnavailable) as excinfo:
        get_adapter().contract("C-1")
    assert excinfo.value.reason == "connection"

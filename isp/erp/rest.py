"""The REST adapter: a real ERP behind the JSON API documented in README ("ERP adapters").

Configured by ``ERP_BASE_URL`` and ``ERP_TOKEN`` (sent as ``Authorization: Bearer …``).
Resilience, so a slow or broken ERP never holds the bot for long:

- every request has a connect and a read timeout (``ERP_CONNECT_TIMEOUT_SECONDS``,
  ``ERP_TIMEOUT_SECONDS``);
- timeouts, connection errors, 429 and 5xx are retried ``ERP_RETRIES`` times with a short
  exponential backoff (``ERP_RETRY_BACKOFF_SECONDS``). Writes carry an ``Idempotency-Key``
  (the API requires the ERP to honour it), so a retried booking never books twice;
- a circuit breaker shared by every worker (``ispsupport.breaker``, in the cache) opens after
  ``ERP_BREAKER_FAIL_MAX`` failed requests and lets one trial through after
  ``ERP_BREAKER_RESET_SECONDS``; while open, calls fail at once with ``ErpUnavailable``;
- an answer that is not the documented JSON raises ``ErpBadResponse`` (and counts as a failure).

Logs carry the operation, HTTP status, attempt and reason only: never a CPF, phone, name or
the token. CPFs and phones travel in POST bodies (``/contracts/search``), never in URLs, so
they do not end up in the ERP's or a proxy's access logs.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote

import requests
from django.conf import settings
from django.utils.dateparse import parse_date, parse_datetime

from isp.erp import base
from ispsupport.breaker import CircuitBreaker

logger = logging.getLogger(__name__)

_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


def breaker() -> CircuitBreaker:
    """The breaker shared by every REST ERP call of every worker."""
    return CircuitBreaker(
        "erp",
        fail_max=int(getattr(settings, "ERP_BREAKER_FAIL_MAX", 5)),
        reset_timeout_s=float(getattr(settings, "ERP_BREAKER_RESET_SECONDS", 30.0)),
    )


class RestErpAdapter:
    """``ERP_ADAPTER=rest``."""

    name = "rest"

    def __init__(
        self,
        *,
        base_url: str,
        token: str,
        timeout_s: float = 4.0,
        connect_timeout_s: float = 2.0,
        retries: int = 2,
        backoff_s: float = 0.3,
    ) -> None:
        if not base_url:
            raise base.ErpUnavailable("not_configured")
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = (connect_timeout_s, timeout_s)
        self.retries = max(0, retries)
        self.backoff_s = max(0.0, backoff_s)
        self.session = requests.Session()
        self.session.headers.update(
            {
                "Authorization": f"Bearer {token}",
                "Accept": "application/json",
                "User-Agent": "ispsupport-erp/1",
            }
        )

    # --- transport ----------------------------------------------------------------------------

    def _request(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        idempotent_write: bool = False,
        binary: bool = False,
    ) -> tuple[int, Any]:
        """Call the ERP under the breaker with retries; return (status, parsed body).

        2xx and 404/409 come back to the caller; everything else raises.
        """
        guard = breaker()
        if not guard.allow():
            raise base.ErpUnavailable("breaker_open")
        headers = {"Idempotency-Key": uuid.uuid4().hex} if idempotent_write else {}
        url = f"{self.base_url}{path}"
        reason = "unknown"
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff_s * (2 ** (attempt - 1)))
            try:
                response = self.session.request(
                    method, url, json=body, headers=headers, timeout=self.timeout
                )
            except requests.Timeout:
                reason = "timeout"
                self._log(operation, None, attempt, reason)
                continue
            except requests.RequestException:
                reason = "connection"
                self._log(operation, None, attempt, reason)
                continue
            status = response.status_code
            if status in _RETRY_STATUSES:
                reason = f"http_{status}"
                self._log(operation, status, attempt, reason)
                continue
            if status in (401, 403):
                guard.record_failure()  # our credentials are refused: unusable for everyone
                self._log(operation, status, attempt, "auth")
                raise base.ErpUnavailable("auth")
            if status in (404, 409) or 200 <= status < 300:
                try:
                    parsed = response.content if binary and status < 300 else _json(response)
                except base.ErpBadResponse:
                    guard.record_failure()
                    self._log(operation, status, attempt, "bad_json")
                    raise
                guard.record_success()
                return status, parsed
            # Another 4xx: a request of ours the ERP refuses; the service itself is fine.
            guard.record_success()
            self._log(operation, status, attempt, "refused")
            raise base.ErpBadResponse(f"http_{status}")
        guard.record_failure()
        raise base.ErpUnavailable(reason)

    def _log(self, operation: str, status: int | None, attempt: int, reason: str) -> None:
        logger.warning(
            "erp: request failed",
            extra={
                "operation": operation,
                "http_status": status,
                "attempt": attempt + 1,
                "reason": reason,
            },
        )

    def _get(self, operation: str, path: str) -> tuple[int, Any]:
        return self._request(operation, "GET", path)

    # --- the interface ------------------------------------------------------------------------

    def contracts_by_phone(self, phone_e164: str) -> list[base.Contract]:
        return self._search({"phone": phone_e164})

    def contracts_by_cpf(self, cpf: str) -> list[base.Contract]:
        return self._search({"cpf": cpf})

    def _search(self, body: dict[str, str]) -> list[base.Contract]:
        # A read, so retrying it is safe; POST only to keep identifiers out of URLs.
        _status, data = self._request("contracts.search", "POST", "/v1/contracts/search", body=body)
        return [_contract(item) for item in _list(data, "contracts")]

    def contract(self, ref: str) -> base.Contract | None:
        status, data = self._get("contracts.get", f"/v1/contracts/{_seg(ref)}")
        if status == 404:
            return None
        return _contract(data)

    def open_invoices(self, ref: str) -> list[base.Invoice]:
        status, data = self._get("invoices.list", f"/v1/contracts/{_seg(ref)}/invoices?status=open")
        if status == 404:
            raise base.ErpConflict("unknown_contract")
        invoices = [_invoice(item) for item in _list(data, "invoices")]
        return sorted((i for i in invoices if i.status == "open"), key=lambda i: (i.due_date, i.id))

    def invoice_pdf(self, ref: str, invoice_id: str) -> bytes:
        status, data = self._request(
            "invoices.pdf",
            "GET",
            f"/v1/contracts/{_seg(ref)}/invoices/{_seg(invoice_id)}/pdf",
            binary=True,
        )
        if status == 404:
            raise base.ErpConflict("unknown_invoice")
        if not isinstance(data, bytes) or not data.startswith(b"%PDF-"):
            raise base.ErpBadResponse("not_a_pdf")
        return data

    def connection_status(self, ref: str) -> base.ConnectionStatus:
        status, data = self._get("connection.get", f"/v1/contracts/{_seg(ref)}/connection")
        if status == 404:
            raise base.ErpConflict("unknown_contract")
        state = _choice(data, "state", base.CONNECTION_STATES)
        since = _opt_datetime(data, "since")
        return base.ConnectionStatus(state=state, since=since)

    def visit_windows(self, ref: str, *, days: int) -> list[base.VisitWindow]:
        status, data = self._get(
            "visits.windows", f"/v1/contracts/{_seg(ref)}/visit-windows?days={int(days)}"
        )
        if status == 404:
            raise base.ErpConflict("unknown_contract")
        return [_window(item) for item in _list(data, "windows")]

    def open_service_order(self, ref: str, *, window_id: str, reason: str) -> base.ServiceOrder:
        status, data = self._request(
            "service_orders.create",
            "POST",
            f"/v1/contracts/{_seg(ref)}/service-orders",
            body={"window_id": window_id, "reason": reason},
            idempotent_write=True,
        )
        if status in (404, 409):
            raise base.ErpConflict(_error_code(data, "window_unavailable"))
        return base.ServiceOrder(number=_str(data, "number"), window=_window(data.get("window")))

    def trust_unlock(self, ref: str, *, days: int) -> base.TrustUnlock:
        status, data = self._request(
            "trust_unlock.create",
            "POST",
            f"/v1/contracts/{_seg(ref)}/trust-unlock",
            body={"days": int(days)},
            idempotent_write=True,
        )
        if status in (404, 409):
            raise base.ErpConflict(_error_code(data, "unlock_refused"))
        return base.TrustUnlock(until=_datetime(data, "until"))


# --- parsing: the documented JSON or ErpBadResponse ------------------------------------------


def _seg(value: str) -> str:
    return quote(str(value), safe="")


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except (ValueError, json.JSONDecodeError):
        raise base.ErpBadResponse("bad_json") from None


def _obj(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise base.ErpBadResponse(f"{what}_not_an_object")
    return value


def _list(data: Any, key: str) -> list[Any]:
    items = _obj(data, "body").get(key)
    if not isinstance(items, list):
        raise base.ErpBadResponse(f"{key}_not_a_list")
    return items


def _str(data: Any, key: str, *, required: bool = True) -> str:
    value = _obj(data, "body").get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str | int) or isinstance(value, bool) or (required and value == ""):
        raise base.ErpBadResponse(f"bad_{key}")
    return str(value)


def _choice(data: Any, key: str, choices: tuple[str, ...]) -> str:
    value = _str(data, key)
    if value not in choices:
        raise base.ErpBadResponse(f"bad_{key}")
    return value


def _int(data: Any, key: str) -> int:
    value = _obj(data, "body").get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise base.ErpBadResponse(f"bad_{key}")
    return value


def _money(data: Any, key: str) -> Decimal:
    value = _obj(data, "body").get(key)
    if not isinstance(value, str):  # amounts travel as strings: no binary floating point
        raise base.ErpBadResponse(f"bad_{key}")
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise base.ErpBadResponse(f"bad_{key}") from None
    if not amount.is_finite() or amount < 0:
        raise base.ErpBadResponse(f"bad_{key}")
    return amount.quantize(Decimal("0.01"))


def _date(data: Any, key: str) -> date:
    raw = _str(data, key)
    parsed = parse_date(raw if len(raw) != 7 else f"{raw}-01")  # "2026-11" for a month
    if parsed is None:
        raise base.ErpBadResponse(f"bad_{key}")
    return parsed


def _datetime(data: Any, key: str) -> datetime:
    parsed = _opt_datetime(data, key)
    if parsed is None:
        raise base.ErpBadResponse(f"bad_{key}")
    return parsed


def _opt_datetime(data: Any, key: str) -> datetime | None:
    raw = _obj(data, "body").get(key)
    if raw is None:
        return None
    try:
        parsed = parse_datetime(raw) if isinstance(raw, str) else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:  # a time without offset is ambiguous
        raise base.ErpBadResponse(f"bad_{key}")
    return parsed


def _contract(item: Any) -> base.Contract:
    item = _obj(item, "contract")
    holder = _obj(item.get("holder"), "holder")
    plan = _obj(item.get("plan"), "plan")
    address = _obj(item.get("address") or {}, "address")
    network = _obj(item.get("network") or {}, "network")
    phones = item.get("phones") or []
    if not isinstance(phones, list) or not all(isinstance(p, str) for p in phones):
        raise base.ErpBadResponse("bad_phones")
    return base.Contract(
        ref=_str(item, "ref"),
        holder_name=_str(holder, "name", required=False),
        holder_cpf="".join(ch for ch in _str(holder, "cpf", required=False) if ch.isdigit()),
        status=_choice(item, "status", base.CONTRACT_STATUSES),
        plan=base.Plan(
            name=_str(plan, "name"),
            download_mbps=_int(plan, "download_mbps"),
            upload_mbps=_int(plan, "upload_mbps"),
            monthly_price=_money(plan, "monthly_price"),
        ),
        address=_str(address, "street", required=False),
        region=base.RegionTags(
            city=_str(address, "city", required=False),
            neighbourhood=_str(address, "neighbourhood", required=False),
            pop=_str(network, "pop", required=False),
            olt=_str(network, "olt", required=False),
            box=_str(network, "box", required=False),
        ),
        phones=tuple(phones),
    )


def _invoice(item: Any) -> base.Invoice:
    item = _obj(item, "invoice")
    return base.Invoice(
        id=_str(item, "id"),
        reference_month=_date(item, "reference_month"),
        due_date=_date(item, "due_date"),
        amount=_money(item, "amount"),
        status=_choice(item, "status", base.INVOICE_STATUSES),
        digitable_line=_str(item, "digitable_line", required=False),
        pix_code=_str(item, "pix_code", required=False),
    )


def _window(item: Any) -> base.VisitWindow:
    item = _obj(item, "window")
    starts_at, ends_at = _datetime(item, "start"), _datetime(item, "end")
    if ends_at <= starts_at:
        raise base.ErpBadResponse("bad_window")
    return base.VisitWindow(id=_str(item, "id"), starts_at=starts_at, ends_at=ends_at)


def _error_code(data: Any, default: str) -> str:
    if isinstance(data, dict) and isinstance(data.get("error"), str) and data["error"]:
        return data["error"][:40]
    return default

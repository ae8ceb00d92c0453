"""The ERP adapter interface: what the bot may ask an ISP's management system, as plain values.

An adapter answers for one ERP (the demo tables, a REST API, later IXC Soft, SGP, MK-Auth,
Voalle…). Callers never see the ERP's own shapes: every answer is one of the frozen dataclasses
below, with money as ``Decimal`` (BRL) and times timezone-aware. Failures are one of the
:class:`ErpError` subclasses, so the bot can hand the customer to a person instead of crashing:

- :class:`ErpUnavailable`: the ERP could not be reached or kept failing (timeouts, 5xx after
  the retries, the circuit breaker open, credentials refused). Try again later.
- :class:`ErpBadResponse`: it answered with something that is not the documented API (bad
  JSON, a missing field). A person must look; retrying will not help.
- :class:`ErpConflict`: it refused this one operation for a business reason (``code``: e.g.
  ``window_unavailable``, ``unlock_refused``, ``not_blocked``).

Adapters do not enforce the ISP's own policies (trust unlock once per N days): ``isp.services``
does, before calling them, so every adapter behaves the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Protocol, runtime_checkable

CONTRACT_STATUSES = ("active", "blocked", "cancelled")
CONNECTION_STATES = ("online", "offline", "blocked", "unknown")
INVOICE_STATUSES = ("open", "paid", "cancelled")


class ErpError(Exception):
    """Base of every adapter failure; ``reason`` is a short code, safe to log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ErpUnavailable(ErpError):
    """Not reachable, too slow, failing, or the breaker is open."""


class ErpBadResponse(ErpError):
    """The answer does not follow the documented API."""


class ErpConflict(ErpError):
    """The ERP refused the operation for a business reason (``reason`` says which)."""


@dataclass(frozen=True, slots=True)
class RegionTags:
    """Where a contract sits: the tags outages and campaign segments filter on."""

    city: str = ""
    neighbourhood: str = ""
    pop: str = ""
    olt: str = ""
    box: str = ""


@dataclass(frozen=True, slots=True)
class Plan:
    name: str
    download_mbps: int
    upload_mbps: int
    monthly_price: Decimal


@dataclass(frozen=True, slots=True)
class Contract:
    """A contract as the bot needs it. ``holder_cpf`` is personal data: never log it."""

    ref: str
    holder_name: str
    holder_cpf: str
    status: str  # one of CONTRACT_STATUSES
    plan: Plan
    address: str = ""
    region: RegionTags = field(default_factory=RegionTags)
    phones: tuple[str, ...] = ()  # canonical E.164

    @property
    def is_cancelled(self) -> bool:
        return self.status == "cancelled"


@dataclass(frozen=True, slots=True)
class Invoice:
    id: str
    reference_month: date
    due_date: date
    amount: Decimal
    status: str  # one of INVOICE_STATUSES
    digitable_line: str = ""
    pix_code: str = ""

    def is_overdue(self, today: date) -> bool:
        return self.status == "open" and self.due_date < today


@dataclass(frozen=True, slots=True)
class ConnectionStatus:
    state: str  # one of CONNECTION_STATES
    since: datetime | None = None


@dataclass(frozen=True, slots=True)
class VisitWindow:
    id: str
    starts_at: datetime
    ends_at: datetime


@dataclass(frozen=True, slots=True)
class ServiceOrder:
    number: str
    window: VisitWindow


@dataclass(frozen=True, slots=True)
class TrustUnlock:
    until: datetime


@runtime_checkable
class ErpAdapter(Protocol):
    """One ERP. Every method may raise :class:`ErpError`; none returns the ERP's raw data."""

    name: str

    def contracts_by_phone(self, phone_e164: str) -> list[Contract]:
        """Contracts that list this canonical E.164 phone (several: a household)."""
        ...

    def contracts_by_cpf(self, cpf: str) -> list[Contract]:
        """Contracts whose holder has this CPF (11 digits, already validated)."""
        ...

    def contract(self, ref: str) -> Contract | None:
        """One contract, or None when the ERP does not know it."""
        ...

    def open_invoices(self, ref: str) -> list[Invoice]:
        """Unpaid invoices of the contract, oldest due date first."""
        ...

    def invoice_pdf(self, ref: str, invoice_id: str) -> bytes:
        """The bill as a PDF document (the boleto)."""
        ...

    def connection_status(self, ref: str) -> ConnectionStatus:
        """Whether the customer's equipment is online, and since when."""
        ...

    def visit_windows(self, ref: str, *, days: int) -> list[VisitWindow]:
        """Free technical-visit windows for the contract's address in the next ``days``."""
        ...

    def open_service_order(self, ref: str, *, window_id: str, reason: str) -> ServiceOrder:
        """Book a visit in ``window_id``; ``ErpConflict("window_unavailable")`` if it filled."""
        ...

    def trust_unlock(self, ref: str, *, days: int) -> TrustUnlock:
        """Unblock a contract blocked for non-payment for ``days`` days, in trust."""
        ...

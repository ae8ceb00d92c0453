"""Demo ERP data for ``seed_demo``: contracts for the demo customers, their bills, visit windows,
and a few fixed cases to try every self-service flow from the simulator (``/simulator/``).

Fixed cases (README, "Self-service through the bot"):

============================  ==============================================================
``+55 11 99999-0001``         one contract (10001), identified by the number: bill, status
``+55 11 99999-0002``         a household: the number is on two contracts (10002, 10003)
CPF ``529.982.247-25``        two contracts of one holder (10004 blocked for non-payment,
                              10005 offline), identified by CPF from any number
CPF ``111.444.777-35``        a former customer (cancelled): refused like an unknown CPF
============================  ==============================================================
"""

from __future__ import annotations

import random
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from conversations.models import Customer
from conversations.phones import normalize_phone
from isp.models import Contract, ContractPhone, Invoice, VisitWindow, phone_index

PLANS = [
    ("Fibra 100 Mega", 100, 50, Decimal("79.90")),
    ("Fibra 300 Mega", 300, 150, Decimal("99.90")),
    ("Fibra 500 Mega", 500, 250, Decimal("119.90")),
    ("Fibra 1 Giga", 1000, 500, Decimal("189.90")),
]
# city → neighbourhoods; each neighbourhood is served by one POP/OLT.
PLACES = {
    "São Paulo": ["Vila Mariana", "Moema", "Pinheiros", "Tatuapé", "Santana"],
    "Campinas": ["Cambuí", "Centro", "Barão Geraldo", "Taquaral"],
    "Santos": ["Gonzaga", "Boqueirão", "Ponta da Praia"],
}
STREETS = ["Rua das Flores", "Avenida Brasil", "Rua Sete de Setembro", "Rua XV de Novembro"]


@dataclass(frozen=True)
class Showcase:
    ref: str
    holder: str
    cpf: str
    phones: tuple[str, ...]
    plan: int
    city: str
    neighbourhood: str
    status: str
    connection: str
    overdue: bool = False


SHOWCASE = (
    Showcase("10001", "Ana Souza", "39053344705", ("+5511999990001",), 1, "São Paulo",
             "Vila Mariana", "active", "online"),
    Showcase("10002", "Maria Oliveira", "27651237803", ("+5511999990002",), 2, "São Paulo",
             "Moema", "active", "online"),
    Showcase("10003", "João Oliveira", "86288366757", ("+5511999990002",), 0, "São Paulo",
             "Moema", "active", "online"),
    Showcase("10004", "Carlos Pereira", "52998224725", ("+551932320004",), 1, "Campinas",
             "Cambuí", "blocked", "online", overdue=True),
    Showcase("10005", "Carlos Pereira", "52998224725", ("+551932320004",), 3, "Campinas",
             "Centro", "active", "offline"),
    Showcase("10006", "Beatriz Lima", "11144477735", ("+5511999990006",), 0, "Santos",
             "Gonzaga", "cancelled", "unknown"),
)  # fmt: skip


def network_tags(city: str, neighbourhood: str, box_number: int) -> dict[str, str]:
    """POP per city, one OLT per neighbourhood, numbered boxes (CTO) under it."""
    city_code = "".join(ch for ch in _ascii(city).upper() if ch.isalpha())[:3]
    olt = sorted(PLACES.get(city, [neighbourhood])).index(neighbourhood) + 1
    return {
        "pop": f"POP-{city_code}",
        "olt": f"OLT-{city_code}-{olt:02d}",
        "box": f"CTO-{city_code}-{olt:02d}-{box_number:03d}",
    }


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def digitable_line(rng: random.Random) -> str:
    """A boleto digitable line in the bank format (47 digits in 5 groups); not payable."""
    d = "".join(str(rng.randint(0, 9)) for _ in range(47))
    return f"{d[0:5]}.{d[5:10]} {d[10:15]}.{d[15:21]} {d[21:26]}.{d[26:32]} {d[32]} {d[33:47]}"


def _crc16(payload: str) -> str:
    crc = 0xFFFF
    for byte in payload.encode("utf-8"):
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return f"{crc:04X}"


def _emv(tag: str, value: str) -> str:
    return f"{tag}{len(value):02d}{value}"


def pix_code(*, amount: Decimal, key: str, txid: str) -> str:
    """A PIX "copia e cola" (EMV BR Code, with its CRC16) for ``amount`` to ``key``."""
    merchant = _emv("00", "br.gov.bcb.pix") + _emv("01", key)
    name = _ascii(settings.ISP_NAME).upper()[:25] or "PROVEDOR"
    payload = (
        _emv("00", "01")
        + _emv("26", merchant)
        + _emv("52", "0000")
        + _emv("53", "986")
        + _emv("54", f"{amount:.2f}")
        + _emv("58", "BR")
        + _emv("59", name)
        + _emv("60", "SAO PAULO")
        + _emv("62", _emv("05", txid[:25]))
        + "6304"
    )
    return payload + _crc16(payload)


def _month_start(day: date, months_back: int) -> date:
    year, month = day.year, day.month - months_back
    while month < 1:
        month += 12
        year -= 1
    return date(year, month, 1)


def _invoices(contract: Contract, rng: random.Random, *, overdue: bool) -> None:
    today = timezone.localdate()
    key = str(uuid.UUID(int=rng.getrandbits(128)))
    rows = []
    # Two months back paid, last month paid (or overdue), this month open.
    for back in (2, 1, 0):
        ref_month = _month_start(today, back)
        due = ref_month.replace(day=10) + timedelta(days=31)
        due = due.replace(day=10)
        open_ = back == 0 or (overdue and back == 1)
        if overdue and back == 1:
            due = today - timedelta(days=25)
        number = f"{contract.ref}-{ref_month:%Y%m}"
        rows.append(
            Invoice(
                contract=contract,
                number=number,
                reference_month=ref_month,
                due_date=due,
                amount=contract.monthly_price,
                status=Invoice.Status.OPEN if open_ else Invoice.Status.PAID,
                digitable_line=digitable_line(rng),
                pix_code=pix_code(amount=contract.monthly_price, key=key, txid=number),
                paid_at=None if open_ else timezone.make_aware(datetime.combine(due, time(9))),
            )
        )
    Invoice.objects.bulk_create(rows, ignore_conflicts=True)


def _create(
    *,
    ref: str,
    holder: str,
    cpf: str,
    phones: tuple[str, ...],
    plan: int,
    city: str,
    neighbourhood: str,
    status: str,
    connection: str,
    rng: random.Random,
    overdue: bool = False,
) -> Contract:
    name, down, up, price = PLANS[plan]
    now = timezone.now()
    contract = Contract(
        ref=ref,
        source=Contract.Source.DEMO,
        holder_name=holder,
        address=f"{rng.choice(STREETS)}, {rng.randint(10, 2500)}",
        city=city,
        neighbourhood=neighbourhood,
        plan_name=name,
        download_mbps=down,
        upload_mbps=up,
        monthly_price=price,
        status=status,
        connection=connection,
        connection_since=now - timedelta(hours=rng.randint(2, 200)),
        **network_tags(city, neighbourhood, rng.randint(1, 40)),
    )
    contract.set_cpf(cpf)
    contract.save()
    for phone in phones:
        ContractPhone.objects.create(contract=contract, phone=phone, phone_index=phone_index(phone))
    if status != Contract.Status.CANCELLED:
        _invoices(contract, rng, overdue=overdue)
    return contract


def fake_cpf(rng: random.Random) -> str:
    """A CPF with valid check digits (random, not a real person's)."""
    base = [rng.randint(0, 9) for _ in range(9)]
    for length in (9, 10):
        total = sum(d * w for d, w in zip(base, range(length + 1, 1, -1), strict=False))
        digit = (total * 10) % 11
        base.append(0 if digit == 10 else digit)
    return "".join(map(str, base))


def seed_visit_windows(*, days: int = 14) -> int:
    """Morning and afternoon windows on working days and Saturday mornings; idempotent."""
    created = 0
    today = timezone.localdate()
    tz = timezone.get_current_timezone()
    for offset in range(1, days + 1):
        day = today + timedelta(days=offset)
        if day.weekday() == 6:
            continue
        periods = [(8, 12)] if day.weekday() == 5 else [(8, 12), (13, 17)]
        for start_h, end_h in periods:
            starts = datetime.combine(day, time(start_h), tzinfo=tz)
            ends = datetime.combine(day, time(end_h), tzinfo=tz)
            _window, was_created = VisitWindow.objects.get_or_create(
                starts_at=starts, ends_at=ends, city="", defaults={"capacity": 2}
            )
            created += int(was_created)
    return created


def seed_isp_demo(*, seed: int = 2026) -> dict[str, int]:
    """Create the demo ERP's data; safe to run again (adds only what is missing)."""
    rng = random.Random(seed)
    counts = {"contracts": 0, "windows": 0}
    existing = set(Contract.objects.values_list("ref", flat=True))
    with transaction.atomic():
        for case in SHOWCASE:
            if case.ref in existing:
                continue
            _create(
                ref=case.ref,
                holder=case.holder,
                cpf=case.cpf,
                phones=case.phones,
                plan=case.plan,
                city=case.city,
                neighbourhood=case.neighbourhood,
                status=case.status,
                connection=case.connection,
                rng=rng,
                overdue=case.overdue,
            )
            counts["contracts"] += 1
    statuses = ["active"] * 8 + ["blocked", "cancelled"]
    for customer in Customer.objects.exclude(status=Customer.Status.ANONYMIZED).order_by("pk"):
        ref = f"CT-{100000 + customer.pk}"
        phone = customer.phone_e164 or normalize_phone(customer.wa_id)
        if ref in existing or not phone:
            continue
        city = rng.choice(list(PLACES))
        status = rng.choice(statuses)
        with transaction.atomic():
            _create(
                ref=ref,
                holder=customer.name or "Cliente",
                cpf=fake_cpf(rng),
                phones=(phone,),
                plan=rng.randrange(len(PLANS)),
                city=city,
                neighbourhood=rng.choice(PLACES[city]),
                status=status,
                connection=rng.choice(["online"] * 5 + ["offline"]),
                rng=rng,
                overdue=status == "blocked",
            )
        counts["contracts"] += 1
    counts["windows"] = seed_visit_windows()
    return counts

"""The demo ERP: our own tables (``isp.models``, seeded by ``seed_demo``) behind the adapter
interface, so the whole self-service flow works offline, in ``make run`` and in tests.

It behaves like a small real ERP would: ``source=demo`` contracts (``seed_demo``) and
``source=import`` ones (an imported customer base, ``isp.imports``) are its records, visit
windows have a capacity and are booked under a row lock, a trust unlock changes the connection.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from isp import formatting, models
from isp.erp import base
from isp.pdf import text_pdf


def _contract(row: models.Contract) -> base.Contract:
    return base.Contract(
        ref=row.ref,
        holder_name=row.holder_name,
        holder_cpf=row.cpf,
        status=row.status,
        plan=base.Plan(
            name=row.plan_name,
            download_mbps=row.download_mbps,
            upload_mbps=row.upload_mbps,
            monthly_price=row.monthly_price,
        ),
        address=row.address,
        region=base.RegionTags(
            city=row.city,
            neighbourhood=row.neighbourhood,
            pop=row.pop,
            olt=row.olt,
            box=row.box,
        ),
        phones=tuple(sorted(p.phone for p in row.phones.all())),
    )


def _invoice(row: models.Invoice) -> base.Invoice:
    return base.Invoice(
        id=row.number,
        reference_month=row.reference_month,
        due_date=row.due_date,
        amount=row.amount,
        status=row.status,
        digitable_line=row.digitable_line,
        pix_code=row.pix_code,
    )


# Its records: the seeded demo contracts, and a customer base imported into it.
_SOURCES = (models.Contract.Source.DEMO, models.Contract.Source.IMPORT)


class DemoErpAdapter:
    """``ERP_ADAPTER=demo`` (the default)."""

    name = "demo"

    def _rows(self):
        return models.Contract.objects.filter(source__in=_SOURCES).prefetch_related("phones")

    def _row(self, ref: str) -> models.Contract:
        row = self._rows().filter(ref=ref).first()
        if row is None:
            raise base.ErpConflict("unknown_contract")
        return row

    def contracts_by_phone(self, phone_e164: str) -> list[base.Contract]:
        rows = self._rows().filter(phones__phone_index=models.phone_index(phone_e164)).distinct()
        return [_contract(row) for row in rows.order_by("ref")]

    def contracts_by_cpf(self, cpf: str) -> list[base.Contract]:
        rows = self._rows().filter(cpf_index=models.cpf_index(cpf)).order_by("ref")
        return [_contract(row) for row in rows]

    def contract(self, ref: str) -> base.Contract | None:
        row = self._rows().filter(ref=ref).first()
        return _contract(row) if row else None

    def open_invoices(self, ref: str) -> list[base.Invoice]:
        rows = models.Invoice.objects.filter(
            contract__ref=ref,
            contract__source__in=_SOURCES,
            status=models.Invoice.Status.OPEN,
        ).order_by("due_date", "number")
        return [_invoice(row) for row in rows]

    def invoice_pdf(self, ref: str, invoice_id: str) -> bytes:
        row = (
            models.Invoice.objects.select_related("contract")
            .filter(contract__ref=ref, contract__source__in=_SOURCES, number=invoice_id)
            .first()
        )
        if row is None:
            raise base.ErpConflict("unknown_invoice")
        contract = row.contract
        lines = [
            (settings.ISP_NAME, 18),
            ("Segunda via da fatura", 14),
            ("", 0),
            (f"Fatura {row.number} · referência {formatting.month_year(row.reference_month)}", 11),
            (f"Contrato {contract.ref} · plano {contract.plan_name}", 11),
            (f"Titular: {contract.holder_name}", 11),
            ("", 0),
            (f"Vencimento: {formatting.day(row.due_date)}", 12),
            (f"Valor: {formatting.brl(row.amount)}", 12),
            ("", 0),
            ("Linha digitável do boleto:", 11),
            (row.digitable_line, 11),
            ("", 0),
            ("PIX copia e cola:", 11),
            *[(row.pix_code[i : i + 80], 9) for i in range(0, len(row.pix_code), 80)],
            ("", 0),
            ("Documento de demonstração: não tem valor de cobrança.", 9),
        ]
        return text_pdf(lines, title=f"Fatura {row.number}")

    def connection_status(self, ref: str) -> base.ConnectionStatus:
        row = self._row(ref)
        if row.blocked_now:
            return base.ConnectionStatus(state="blocked", since=row.connection_since)
        return base.ConnectionStatus(state=row.connection, since=row.connection_since)

    def visit_windows(self, ref: str, *, days: int) -> list[base.VisitWindow]:
        row = self._row(ref)
        now = timezone.now()
        rows = (
            models.VisitWindow.objects.filter(
                starts_at__gt=now + timedelta(hours=2),
                starts_at__lt=now + timedelta(days=days),
                booked__lt=F("capacity"),
            )
            .filter(city__in=["", row.city])
            .order_by("starts_at")
        )
        return [
            base.VisitWindow(id=str(w.pk), starts_at=w.starts_at, ends_at=w.ends_at) for w in rows
        ]

    def open_service_order(self, ref: str, *, window_id: str, reason: str) -> base.ServiceOrder:
        row = self._row(ref)
        if not window_id.isdigit():
            raise base.ErpConflict("window_unavailable")
        with transaction.atomic():
            window = (
                models.VisitWindow.objects.select_for_update()
                .filter(pk=int(window_id), city__in=["", row.city])
                .first()
            )
            if window is None or window.booked >= window.capacity:
                raise base.ErpConflict("window_unavailable")
            if window.starts_at <= timezone.now():
                raise base.ErpConflict("window_unavailable")
            window.booked += 1
            window.save(update_fields=["booked"])
            order = models.ServiceOrder.objects.create(
                contract=row, window=window, number="", reason=reason[:40]
            )
            order.number = f"OS-{timezone.localtime():%Y}-{order.pk:06d}"
            order.save(update_fields=["number"])
        return base.ServiceOrder(
            number=order.number,
            window=base.VisitWindow(
                id=str(window.pk), starts_at=window.starts_at, ends_at=window.ends_at
            ),
        )

    def trust_unlock(self, ref: str, *, days: int) -> base.TrustUnlock:
        row = self._row(ref)
        if not row.blocked_now:
            raise base.ErpConflict("not_blocked")
        now = timezone.now()
        until = now + timedelta(days=days)
        models.Contract.objects.filter(pk=row.pk).update(
            trust_unlocked_until=until,
            connection=models.Contract.Connection.ONLINE,
            connection_since=now,
            updated_at=now,
        )
        return base.TrustUnlock(until=until)

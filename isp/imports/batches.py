"""Writing one batch of valid rows: created, updated or unchanged by contract number, with bulk
inserts and updates inside the caller's transaction.

Encrypted fields are encrypted by the fields themselves on every bulk path; the CPF and phone
blind indexes are set with the models' own functions (``Contract.set_cpf``,
``isp.models.phone_index``); only the holder's name and address are decrypted, to compare.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.utils import timezone
from django.utils.translation import gettext as _

from isp.imports.rows import Rejection, Row
from isp.models import Contract, ContractPhone

# Fields compared and written on update (``phones`` separately); optional columns absent from
# the header are left as they are on existing contracts.
_TEXT_FIELDS = ("plan_name", "status", "city", "neighbourhood", "pop", "olt", "box")
_NUMBER_FIELDS = ("download_mbps", "upload_mbps", "monthly_price")


@dataclass
class _Tally:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejections: list[Rejection] = field(default_factory=list)


def _differs(contract: Contract, row: Row, phones: set[str]) -> bool:
    if contract.source != Contract.Source.IMPORT or contract.cpf_index != row.cpf_index:
        return True
    if set(row.phones) != phones:
        return True
    if contract.holder_name != row.holder_name:
        return True
    return any(getattr(contract, name) != value for name, value in row.values.items())


def _apply(contract: Contract, row: Row, now: datetime) -> None:
    contract.source = Contract.Source.IMPORT
    contract.holder_name = row.holder_name
    contract.set_cpf(row.cpf)
    for name, value in row.values.items():
        setattr(contract, name, value)
    contract.synced_at = now
    contract.updated_at = now


def _phone_rows(contract_id: int, row: Row, skip: set[str] = frozenset()) -> list[ContractPhone]:
    return [
        ContractPhone(contract_id=contract_id, phone=e164, phone_index=index)
        for index, e164 in row.phones.items()
        if index not in skip
    ]


def write_batch(rows: list[Row], *, present: set[str], dry_run: bool, label: str) -> _Tally:
    """Upsert one batch in one transaction (call inside ``transaction.atomic``)."""
    tally = _Tally()
    now = timezone.now()
    refs = [r.ref for r in rows]
    existing_qs = Contract.objects.filter(ref__in=refs).defer("cpf")
    if not dry_run:
        existing_qs = existing_qs.select_for_update()
    existing = {c.ref: c for c in existing_qs}
    phones: dict[int, set[str]] = {}
    phone_pks: dict[tuple[int, str], int] = {}
    for pk, contract_id, index in ContractPhone.objects.filter(
        contract_id__in=[c.pk for c in existing.values()]
    ).values_list("pk", "contract_id", "phone_index"):
        phones.setdefault(contract_id, set()).add(index)
        phone_pks[(contract_id, index)] = pk

    new: list[tuple[Contract, Row]] = []
    changed: list[tuple[Contract, Row]] = []
    unchanged: list[int] = []
    for row in rows:
        contract = existing.get(row.ref)
        if contract is None:
            contract = Contract(ref=row.ref, source=Contract.Source.IMPORT, address="")
            _apply(contract, row, now)
            new.append((contract, row))
        elif contract.source == Contract.Source.DEMO:
            tally.rejections.append(
                Rejection(
                    row.line,
                    label,
                    _("Contrato do ERP de demonstração (seed_demo): a importação não o altera."),
                )
            )
        elif _differs(contract, row, phones.get(contract.pk, set())):
            _apply(contract, row, now)
            changed.append((contract, row))
        else:
            unchanged.append(contract.pk)
    tally.created, tally.updated, tally.unchanged = len(new), len(changed), len(unchanged)
    if dry_run:
        return tally

    if new:
        Contract.objects.bulk_create([c for c, _r in new])
        ContractPhone.objects.bulk_create([p for c, r in new for p in _phone_rows(c.pk, r)])
    if changed:
        fields = ["source", "holder_name", "cpf", "cpf_index", "synced_at", "updated_at"]
        fields += sorted(present & {*_TEXT_FIELDS, *_NUMBER_FIELDS, "address"})
        Contract.objects.bulk_update([c for c, _r in changed], fields)
        stale = [
            phone_pks[(c.pk, index)]
            for c, r in changed
            for index in phones.get(c.pk, set()) - set(r.phones)
        ]
        if stale:
            ContractPhone.objects.filter(pk__in=stale).delete()
        ContractPhone.objects.bulk_create(
            [p for c, r in changed for p in _phone_rows(c.pk, r, phones.get(c.pk, set()))]
        )
    if unchanged:
        Contract.objects.filter(pk__in=unchanged).update(synced_at=now)
    return tally

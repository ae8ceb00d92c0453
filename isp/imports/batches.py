"""Writing one batch of valid rows: created, updated or unchanged by contract number, with bulk
inserts (``COPY`` on PostgreSQL) and updates inside the caller's transaction.

Encrypted fields are encrypted by the fields themselves on every bulk path; the CPF and phone
blind indexes are set with the models' own functions (``Contract.set_cpf``,
``isp.models.phone_index``); only the holder's name and address are decrypted, to compare.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, models
from django.utils import timezone
from django.utils.translation import gettext as _

from isp.imports.rows import Rejection, Row
from isp.models import Contract, ContractPhone
from ispsupport.crypto import blind_index_fields

# Fields compared and written on update (``phones`` separately); optional columns absent from
# the header are left as they are on existing contracts.
_TEXT_FIELDS = ("plan_name", "status", "city", "neighbourhood", "pop", "olt", "box")
_NUMBER_FIELDS = ("download_mbps", "upload_mbps", "monthly_price")
# ``synced_at`` (when an import or look-up last brought the contract; retention counts from it)
# is refreshed on unchanged contracts only when older than this: the same file imported twice
# in a day writes nothing the second time.
SYNCED_AT_PRECISION = timedelta(days=1)
_COMPARED = frozenset({*_TEXT_FIELDS, *_NUMBER_FIELDS, "address"})


@dataclass
class _Tally:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejections: list[Rejection] = field(default_factory=list)


def _differs(current: dict[str, Any], row: Row, phones: set[str]) -> bool:
    """Whether ``row`` would change the contract (``current``: its compared columns)."""
    if current["source"] != Contract.Source.IMPORT or current["cpf_index"] != row.cpf_index:
        return True
    if set(row.phones) != phones:
        return True
    if current["holder_name"] != row.holder_name:
        return True
    return any(current[name] != value for name, value in row.values.items())


def _new_contract(row: Row, now: datetime) -> dict[str, Any]:
    """A new contract's values (``_insert``); the CPF comes with its index (``Row.cpf_index``,
    ``isp.models.cpf_index``), as ``Contract.set_cpf`` keeps them."""
    return {
        "ref": row.ref,
        "source": Contract.Source.IMPORT,
        "holder_name": row.holder_name,
        "cpf": row.cpf,
        "cpf_index": row.cpf_index,
        "synced_at": now,
        **row.values,
    }


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


def _insert(model: type[models.Model], rows: list[dict[str, Any]], now: datetime) -> None:
    """Insert ``rows`` (field name → Python value) without building model instances, which
    costs more than the rest of a new row together.

    Every concrete field but the primary key is written: the given value, else ``now`` for
    ``auto_now``/``auto_now_add`` fields, else the field's default. Each value goes through its
    field's ``get_db_prep_save`` as the ORM's own inserts do — encrypted fields encrypt there
    (never memoised: every encryption is randomised), the others are memoised per batch since
    cities, plans and statuses repeat — and derived blind-index columns are computed from their
    source (``ispsupport.crypto``). PostgreSQL gets one ``COPY``, other databases one
    ``executemany``; both inside the caller's transaction.
    """
    if not rows:
        return
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    derived = {f.name: f for f in blind_index_fields(model)}
    fixed = {
        f.name: now if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False) else None
        for f in fields
    }
    memo: dict[tuple[str, Any], Any] = {}

    def prepared(field: models.Field, values: dict[str, Any]) -> Any:
        if field.name in derived:
            value = derived[field.name].compute(values.get(derived[field.name].blind_index_of))
        elif field.name in values:
            value = values[field.name]
        elif fixed[field.name] is not None:
            value = fixed[field.name]
        else:
            value = field.get_default()
        if getattr(field, "encrypted", False):
            return field.get_db_prep_save(value, connection)
        try:
            return memo[(field.name, value)]
        except KeyError:
            memo[(field.name, value)] = result = field.get_db_prep_save(value, connection)
            return result
        except TypeError:  # an unhashable value (a JSON default): prepared every time
            return field.get_db_prep_save(value, connection)

    data = [[prepared(f, values) for f in fields] for values in rows]
    quote = connection.ops.quote_name
    table, columns = quote(model._meta.db_table), ", ".join(quote(f.column) for f in fields)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # psycopg's own cursor: Django's wrapper turns its errors into DatabaseError.
            with (
                connection.wrap_database_errors,
                cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy,
            ):
                for values in data:
                    copy.write_row(values)
        else:
            marks = ", ".join(["%s"] * len(fields))
            cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", data)  # noqa: S608


def write_batch(rows: list[Row], *, present: set[str], dry_run: bool, label: str) -> _Tally:
    """Upsert one batch in one transaction (call inside ``transaction.atomic``)."""
    tally = _Tally()
    now = timezone.now()
    refs = [r.ref for r in rows]
    # Only the compared columns, as values (no model instances): the name (and the address when
    # the file has that column) is decrypted; the CPF is compared by its index.
    compared = ["source", "cpf_index", "holder_name", *sorted(present & _COMPARED)]
    existing_qs = Contract.objects.filter(ref__in=refs)
    if not dry_run:
        existing_qs = existing_qs.select_for_update()
    existing = {c["ref"]: c for c in existing_qs.values("pk", "ref", "synced_at", *compared)}
    phones: dict[int, set[str]] = {}
    phone_pks: dict[tuple[int, str], int] = {}
    for pk, contract_id, index in ContractPhone.objects.filter(
        contract_id__in=[c["pk"] for c in existing.values()]
    ).values_list("pk", "contract_id", "phone_index"):
        phones.setdefault(contract_id, set()).add(index)
        phone_pks[(contract_id, index)] = pk

    new: list[Row] = []
    changed: dict[int, Row] = {}
    unchanged: list[int] = []
    stale_sync: list[int] = []  # unchanged, last brought by an import more than a day ago
    for row in rows:
        current = existing.get(row.ref)
        if current is None:
            new.append(row)
        elif current["source"] == Contract.Source.DEMO:
            tally.rejections.append(
                Rejection(
                    row.line,
                    label,
                    _("Contrato do ERP de demonstração (seed_demo): a importação não o altera."),
                )
            )
        elif _differs(current, row, phones.get(current["pk"], set())):
            changed[current["pk"]] = row
        else:
            unchanged.append(current["pk"])
            if not current["synced_at"] or current["synced_at"] < now - SYNCED_AT_PRECISION:
                stale_sync.append(current["pk"])
    tally.created, tally.updated, tally.unchanged = len(new), len(changed), len(unchanged)
    if dry_run:
        return tally

    if new:
        _insert(Contract, [_new_contract(row, now) for row in new], now)
        ids = dict(Contract.objects.filter(ref__in=[r.ref for r in new]).values_list("ref", "pk"))
        _insert(
            ContractPhone,
            [
                {"contract": ids[row.ref], "phone": e164, "phone_index": index}
                for row in new
                for index, e164 in row.phones.items()
            ],
            now,
        )
    if changed:
        # Rare on a re-import: these few are loaded as instances (already locked above).
        contracts = list(Contract.objects.filter(pk__in=list(changed)).defer("cpf"))
        for contract in contracts:
            _apply(contract, changed[contract.pk], now)
        fields = ["source", "holder_name", "cpf", "cpf_index", "synced_at", "updated_at"]
        fields += sorted(present & _COMPARED)
        Contract.objects.bulk_update(contracts, fields)
        pairs = [(c, changed[c.pk]) for c in contracts]
        stale = [
            phone_pks[(c.pk, index)]
            for c, r in pairs
            for index in phones.get(c.pk, set()) - set(r.phones)
        ]
        if stale:
            ContractPhone.objects.filter(pk__in=stale).delete()
        ContractPhone.objects.bulk_create(
            [p for c, r in pairs for p in _phone_rows(c.pk, r, phones.get(c.pk, set()))]
        )
    if stale_sync:
        Contract.objects.filter(pk__in=stale_sync).update(synced_at=now)
    return tally

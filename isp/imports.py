"""The customer-base import: the ISP's ERP export (CSV) into our contract copies.

``contracts_import`` reads a CSV (``;`` or ``,``, sniffed from the header; UTF-8 with or without
a BOM), validates every row, and upserts ``isp.Contract`` (source ``import``) and its
``isp.ContractPhone`` rows — the tables the demo ERP, identity-before-data, outages and
campaign segments read. It writes no ``conversations.Customer``: a customer row means "wrote
to us on WhatsApp" (campaigns message only those, as Meta requires), and a number on a
contract is not proof of who writes from it (identity is checked per conversation,
``isp.services``).

**Keys.** A contract is its ERP number (``contrato``): the row is created, updated or left
unchanged by it. Who holds it is compared through the CPF's blind index, the phones through
theirs (``isp.models.cpf_index``/``phone_index``): nothing is decrypted to compare them, and
only the holder's name and address (encrypted, randomised) are decrypted. Running the same
file twice changes nothing the second time but the date of the last import (``synced_at``,
from which retention counts).

**Validation** (each problem of a row is one line of the report, with its line number, column
and a pt-BR reason; the row is rejected, the rest goes on): required fields; CPF check digits
(``isp.cpf``); phones normalised to E.164 with the 9th mobile digit
(``conversations.phones``) and checked as Brazilian numbers; known contract statuses;
lengths of the model's columns; numbers and BRL amounts; a contract repeated in the file (the
first occurrence wins); a contract that is the demo ERP's own record.

**Writes.** In batches of ``batch_size`` valid rows, each one transaction with bulk inserts and
updates (encrypted fields are encrypted by the field on every bulk path; the index columns are
computed here with the models' own functions). A batch that fails at the database is rolled
back whole and its rows reported; the next batch goes on. ``dry_run`` reads and classifies
every row and writes nothing.

A first pass decodes the whole file and counts its rows before anything is written, so a file
in the wrong encoding or with a broken header is refused whole (``ImportFileError``).
Nothing here logs a value of the file.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import IO, Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import DatabaseError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from conversations.phones import brazilian_phone_problem, normalize_phone
from isp.cpf import cpf_digits, is_valid_cpf
from isp.models import Contract, ContractImport, ContractPhone, cpf_index, phone_index

logger = logging.getLogger(__name__)

__all__ = [
    "COLUMNS",
    "ImportFileError",
    "ImportResult",
    "Rejection",
    "contracts_import",
    "contracts_import_check_header",
    "import_report_csv",
]

DEFAULT_BATCH_SIZE = 1000
DEFAULT_ENCODING = "utf-8-sig"  # UTF-8, with or without the BOM spreadsheets write
HOLDER_MAX_LENGTH = 200
ADDRESS_MAX_LENGTH = 300
PHONE_SEPARATORS = re.compile(r"[|,;/]")


@dataclass(frozen=True)
class Column:
    """A column of the format: the ``Contract`` field it fills, its pt-BR header, aliases."""

    field: str
    header: str
    aliases: tuple[str, ...] = ()
    required: bool = False


# The documented format (README "Importing the customer base"). Headers are matched after
# removing accents, case and punctuation ("Situação" = "situacao", "Nº do contrato" =
# "n_do_contrato"); English aliases are accepted too.
COLUMNS: tuple[Column, ...] = (
    Column(
        "ref",
        "contrato",
        ("numero_contrato", "numero_do_contrato", "n_contrato", "contract", "contract_ref"),
        required=True,
    ),
    Column(
        "holder_name",
        "titular",
        ("nome", "nome_titular", "nome_do_titular", "cliente", "holder", "holder_name", "name"),
        required=True,
    ),
    Column("cpf", "cpf", ("cpf_titular", "cpf_do_titular", "holder_cpf"), required=True),
    Column(
        "phones",
        "telefones",
        ("telefone", "celular", "celulares", "fone", "whatsapp", "phone", "phones"),
        required=True,
    ),
    Column("plan_name", "plano", ("plan", "plan_name"), required=True),
    Column(
        "status",
        "situacao",
        ("situacao_contrato", "situacao_do_contrato", "status", "contract_status"),
        required=True,
    ),
    Column("city", "cidade", ("municipio", "city")),
    Column("neighbourhood", "bairro", ("neighbourhood", "neighborhood", "district")),
    Column("address", "endereco", ("logradouro", "endereco_de_instalacao", "address", "street")),
    Column("pop", "pop"),
    Column("olt", "olt"),
    Column("box", "cto", ("caixa", "caixa_cto", "box", "splitter")),
    Column("download_mbps", "download_mbps", ("download", "velocidade_download")),
    Column("upload_mbps", "upload_mbps", ("upload", "velocidade_upload")),
    Column("monthly_price", "mensalidade", ("valor", "valor_mensal", "monthly_price", "price")),
)
_BY_NAME: dict[str, Column] = {}
for _column in COLUMNS:
    for _name in (_column.header, *_column.aliases):
        _BY_NAME[_name] = _column

# Contract statuses as ERPs spell them (normalised like headers).
STATUS_VALUES: dict[str, str] = {
    **dict.fromkeys(("ativo", "ativa", "active", "habilitado", "habilitada"), "active"),
    **dict.fromkeys(
        (
            "bloqueado",
            "bloqueada",
            "blocked",
            "suspenso",
            "suspensa",
            "bloqueado_por_falta_de_pagamento",
            "bloqueio_financeiro",
        ),
        "blocked",
    ),
    **dict.fromkeys(("cancelado", "cancelada", "cancelled", "canceled", "rescindido"), "cancelled"),
}

# Fields compared and written on update (``phones`` separately); optional columns absent from
# the header are left as they are on existing contracts.
_TEXT_FIELDS = ("plan_name", "status", "city", "neighbourhood", "pop", "olt", "box")
_NUMBER_FIELDS = ("download_mbps", "upload_mbps", "monthly_price")


class ImportFileError(Exception):
    """The file cannot be imported at all (unreadable, wrong encoding, wrong header); nothing
    was written. ``message`` is pt-BR, for people, and holds no value of the file."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Rejection:
    """One problem of one row: its line in the file (the header is line 1), the column as
    the file names it ("" for the whole line) and why, in pt-BR. Never a value of the row."""

    line: int
    column: str
    reason: str


@dataclass
class ImportResult:
    """What an import did (or, with ``dry_run``, would do). Counts are rows."""

    dry_run: bool = False
    delimiter: str = ";"
    total: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    failed_batches: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.rejected == 0


@dataclass
class _Row:
    """A valid row, normalised as it will be stored."""

    line: int
    ref: str
    holder_name: str
    cpf: str
    cpf_index: str
    phones: dict[str, str]  # phone blind index → canonical E.164
    values: dict[str, Any]  # the other fields present in the header


@dataclass
class _Header:
    delimiter: str
    positions: dict[str, int]  # field → cell index
    labels: dict[str, str]  # field → the header as the file writes it
    ignored: list[str]
    width: int


# --- the file --------------------------------------------------------------------------------


def _normalise_name(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text or "")
    plain = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    return re.sub(r"[^0-9a-z]+", "_", plain).strip("_")


def _sniff_delimiter(line: str) -> str:
    """``;`` or ``,``, whichever the header line has more of outside quotes."""
    unquoted = re.sub(r'"[^"]*"', "", line)
    return ";" if unquoted.count(";") >= unquoted.count(",") else ","


def _parse_header(first_line: str) -> _Header:
    delimiter = _sniff_delimiter(first_line)
    cells = next(csv.reader([first_line], delimiter=delimiter), [])
    positions: dict[str, int] = {}
    labels: dict[str, str] = {}
    ignored: list[str] = []
    for index, raw in enumerate(cells):
        label = raw.strip()
        column = _BY_NAME.get(_normalise_name(label))
        if column is None:
            if label:
                ignored.append(label)
            continue
        if column.field in positions:
            raise ImportFileError(
                _("O cabeçalho tem duas colunas para “%(column)s”: “%(a)s” e “%(b)s”.")
                % {"column": column.header, "a": labels[column.field], "b": label}
            )
        positions[column.field] = index
        labels[column.field] = label
    missing = [c.header for c in COLUMNS if c.required and c.field not in positions]
    if missing:
        raise ImportFileError(
            _(
                "O cabeçalho (linha 1) não tem as colunas obrigatórias: %(missing)s. "
                "Colunas esperadas: %(expected)s (separadas por ; ou ,)."
            )
            % {
                "missing": ", ".join(missing),
                "expected": ", ".join(c.header for c in COLUMNS),
            }
        )
    return _Header(delimiter, positions, labels, ignored, len(cells))


def _text_stream(binary: IO[bytes], encoding: str) -> IO[str]:
    return io.TextIOWrapper(binary, encoding=encoding, newline="")


def _decode_error(line: int, encoding: str) -> ImportFileError:
    return ImportFileError(
        _(
            "O arquivo não está em %(encoding)s (perto da linha %(line)d). "
            "Exporte-o como CSV UTF-8 ou informe a codificação (por exemplo cp1252)."
        )
        % {
            "encoding": "UTF-8" if encoding.lower() in ("utf-8-sig", "utf-8", "utf8") else encoding,
            "line": line,
        }
    )


def _records(text: IO[str], header: _Header) -> Iterator[tuple[int, list[str]]]:
    """(line where the record starts, cells) of every non-blank record after the header."""
    reader = csv.reader(text, delimiter=header.delimiter)
    next(reader, None)
    last = reader.line_num
    for cells in reader:
        start, last = last + 1, reader.line_num
        if not cells or all(not c.strip() for c in cells):
            continue
        yield start, cells


def _open_checked(open_file: Callable[[], IO[bytes]], encoding: str) -> tuple[_Header, int]:
    """Decode the whole file once: its header and its number of rows (or ImportFileError)."""
    try:
        binary = open_file()
    except OSError as exc:
        raise ImportFileError(
            _("Não foi possível ler o arquivo (%(reason)s).") % {"reason": exc.strerror or exc}
        ) from exc
    try:
        text = _text_stream(binary, encoding)
        line = 1
        try:
            first = text.readline()
            if not first.strip():
                raise ImportFileError(_("O arquivo está vazio (nem o cabeçalho na linha 1)."))
            header = _parse_header(first.rstrip("\r\n"))
            text.seek(0)
            rows = 0
            for line, _cells in _records(text, header):  # noqa: B007 (line: for the error)
                rows += 1
        except UnicodeDecodeError as exc:
            raise _decode_error(line + 1, encoding) from exc
        except csv.Error as exc:
            raise ImportFileError(
                _("O arquivo não é um CSV legível (perto da linha %(line)d).") % {"line": line + 1}
            ) from exc
        except LookupError as exc:
            raise ImportFileError(
                _("Codificação desconhecida: %(encoding)s.") % {"encoding": encoding}
            ) from exc
        return header, rows
    finally:
        binary.close()


def contracts_import_check_header(
    *, open_file: Callable[[], IO[bytes]], encoding: str = DEFAULT_ENCODING
) -> list[str]:
    """Check the file before it is queued (the admin form): the whole file decodes and the
    header has the required columns. Returns the ignored column names; raises ImportFileError."""
    header, _rows = _open_checked(open_file, encoding)
    return header.ignored


# --- one row ---------------------------------------------------------------------------------


def _clean(text: str) -> str:
    return " ".join((text or "").split())


def _parse_int(text: str) -> int | None:
    digits = text.strip()
    return int(digits) if digits.isdigit() and len(digits) <= 9 else None


def _parse_brl(text: str) -> Decimal | None:
    """``99,90``, ``99.90``, ``R$ 1.234,56``, ``1,234.56``, ``1234`` → Decimal; None if not money.

    The last ``,`` or ``.`` is the decimal separator when one or two digits follow it; any other
    is a thousands separator.
    """
    value = text.strip().removeprefix("R$").strip().replace(" ", "")
    if not value:
        return None
    if not re.fullmatch(r"\d[\d.,]*", value):
        return None
    integer, decimals = value, ""
    last = max(value.rfind(","), value.rfind("."))
    if last != -1 and 1 <= len(value) - last - 1 <= 2:
        integer, decimals = value[:last], value[last + 1 :]
    integer = integer.replace(".", "").replace(",", "")
    if not integer.isdigit():
        return None
    try:
        amount = Decimal(f"{integer}.{decimals or '0'}").quantize(Decimal("0.01"))
    except InvalidOperation:
        return None
    return amount if amount < Decimal("100000000") else None


_PHONE_PROBLEMS = {
    "area_code": lambda n: _("%(n)dº número: DDD inexistente.") % {"n": n},
    "mobile": lambda n: _("%(n)dº número: celular com 9 dígitos deve começar por 9.") % {"n": n},
    "landline": lambda n: (
        _("%(n)dº número: telefone fixo deve começar por 2, 3, 4 ou 5.") % {"n": n}
    ),
}


def _parse_phones(cell: str) -> tuple[dict[str, str], list[str]]:
    """The distinct canonical phones of a cell (several separated by | , ; or /) and the
    problems of the others."""
    phones: dict[str, str] = {}
    problems: list[str] = []
    parts = [p.strip() for p in PHONE_SEPARATORS.split(cell or "") if p.strip()]
    for position, raw in enumerate(parts, start=1):
        e164 = normalize_phone(raw, national=True)
        international = raw.startswith(("+", "00"))
        if e164 is None or (not e164.startswith("+55") and not international):
            problems.append(
                _("%(n)dº número inválido: use DDD + número, como 11 98765-4321.") % {"n": position}
            )
            continue
        problem = brazilian_phone_problem(e164) if e164.startswith("+55") else None
        if problem:
            problems.append(_PHONE_PROBLEMS.get(problem, _PHONE_PROBLEMS["area_code"])(position))
            continue
        phones.setdefault(phone_index(e164), e164)
    return phones, problems


def _max_length(name: str) -> int:
    return Contract._meta.get_field(name).max_length


def _parse_row(cells: list[str], line: int, header: _Header) -> tuple[_Row | None, list[Rejection]]:
    problems: list[Rejection] = []

    def reject(field_name: str, reason: str) -> None:
        problems.append(Rejection(line, header.labels.get(field_name, ""), reason))

    if len(cells) > header.width and any(c.strip() for c in cells[header.width :]):
        problems.append(
            Rejection(
                line,
                "",
                _("A linha tem %(n)d campos e o cabeçalho %(m)d: confira o separador e as aspas.")
                % {"n": len(cells), "m": header.width},
            )
        )
        return None, problems

    def cell(field_name: str) -> str | None:
        index = header.positions.get(field_name)
        if index is None:
            return None  # the column is not in the file
        return cells[index] if index < len(cells) else ""

    values: dict[str, Any] = {}
    required = {c.field for c in COLUMNS if c.required}
    for column in COLUMNS:
        raw = cell(column.field)
        if raw is None:
            continue
        if column.required and not raw.strip():
            reject(column.field, _("Campo obrigatório vazio."))
            continue
        if column.field in (
            "ref",
            "holder_name",
            "plan_name",
            "city",
            "neighbourhood",
            "pop",
            "olt",
            "box",
            "address",
        ):
            text = _clean(raw)
            limit = {
                "holder_name": HOLDER_MAX_LENGTH,
                "address": ADDRESS_MAX_LENGTH,
            }.get(column.field) or _max_length(column.field)
            if len(text) > limit:
                reject(column.field, _("Mais de %(max)d caracteres.") % {"max": limit})
                continue
            values[column.field] = text
        elif column.field == "cpf":
            digits = cpf_digits(raw)
            if len(digits) == 14:
                reject("cpf", _("CNPJ não é aceito: informe o CPF do titular (11 dígitos)."))
            elif len(digits) != 11:
                reject("cpf", _("O CPF tem %(n)d dígitos; são 11.") % {"n": len(digits)})
            elif not is_valid_cpf(digits):
                reject("cpf", _("CPF inválido: os dígitos verificadores não conferem."))
            else:
                values["cpf"] = digits
        elif column.field == "phones":
            phones, phone_problems = _parse_phones(raw)
            for problem in phone_problems:
                reject("phones", problem)
            if not phone_problems and not phones:
                reject("phones", _("Campo obrigatório vazio."))
            values["phones"] = phones
        elif column.field == "status":
            status = STATUS_VALUES.get(_normalise_name(raw))
            if status is None:
                reject(
                    "status",
                    _("Situação desconhecida (“%(value)s”): use ativo, bloqueado ou cancelado.")
                    % {"value": _clean(raw)[:30]},
                )
            else:
                values["status"] = status
        elif column.field in ("download_mbps", "upload_mbps"):
            if not raw.strip():
                values[column.field] = 0
                continue
            number = _parse_int(raw)
            if number is None:
                reject(column.field, _("Use um número inteiro de Mbps, como 300."))
            else:
                values[column.field] = number
        elif column.field == "monthly_price":
            if not raw.strip():
                values[column.field] = Decimal("0.00")
                continue
            amount = _parse_brl(raw)
            if amount is None:
                reject(column.field, _("Valor em reais inválido: use, por exemplo, 99,90."))
            else:
                values[column.field] = amount
    if problems or not required <= values.keys():
        return None, problems
    ref = values.pop("ref")
    holder = values.pop("holder_name")
    cpf = values.pop("cpf")
    phones = values.pop("phones")
    return _Row(line, ref, holder, cpf, cpf_index(cpf), phones, values), []


# --- a batch ---------------------------------------------------------------------------------


@dataclass
class _Tally:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejections: list[Rejection] = field(default_factory=list)


def _differs(contract: Contract, row: _Row, phones: set[str]) -> bool:
    if contract.source != Contract.Source.IMPORT or contract.cpf_index != row.cpf_index:
        return True
    if set(row.phones) != phones:
        return True
    if contract.holder_name != row.holder_name:
        return True
    return any(getattr(contract, name) != value for name, value in row.values.items())


def _apply(contract: Contract, row: _Row, now: datetime) -> None:
    contract.source = Contract.Source.IMPORT
    contract.holder_name = row.holder_name
    contract.set_cpf(row.cpf)
    for name, value in row.values.items():
        setattr(contract, name, value)
    contract.synced_at = now
    contract.updated_at = now


def _phone_rows(contract_id: int, row: _Row, skip: set[str] = frozenset()) -> list[ContractPhone]:
    return [
        ContractPhone(contract_id=contract_id, phone=e164, phone_index=index)
        for index, e164 in row.phones.items()
        if index not in skip
    ]


def _write_batch(rows: list[_Row], *, present: set[str], dry_run: bool, label: str) -> _Tally:
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

    new: list[tuple[Contract, _Row]] = []
    changed: list[tuple[Contract, _Row]] = []
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


# --- the import ------------------------------------------------------------------------------


def contracts_import(
    *,
    open_file: Callable[[], IO[bytes]],
    dry_run: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    encoding: str = DEFAULT_ENCODING,
    progress: Callable[[int, int], None] | None = None,
) -> ImportResult:
    """Import the customer base from the CSV that ``open_file()`` opens (binary; it is opened
    twice: once to check the whole file, once to import it).

    Raises ``ImportFileError`` (nothing written) when the file cannot be read, decoded or has
    no valid header. Otherwise every row is imported or rejected with its reasons in
    ``ImportResult.rejections``; ``progress(rows done, total rows)`` is called after each batch.
    """
    header, total = _open_checked(open_file, encoding)
    result = ImportResult(
        dry_run=dry_run, delimiter=header.delimiter, total=total, ignored_columns=header.ignored
    )
    present = set(header.positions)
    ref_at, ref_label = header.positions["ref"], header.labels["ref"]
    seen: dict[str, int] = {}  # contract → the line it first appeared on
    batch: list[_Row] = []
    processed = 0
    batch_size = max(1, batch_size)

    def flush() -> None:
        if not batch:
            return
        try:
            with transaction.atomic():
                tally = _write_batch(batch, present=present, dry_run=dry_run, label=ref_label)
        except DatabaseError as exc:
            # The whole batch is undone; its rows are reported and the next batch goes on.
            logger.warning(
                "isp: customer import batch rolled back",
                extra={
                    "first_line": batch[0].line,
                    "rows": len(batch),
                    "error": type(exc).__name__,
                },
            )
            result.failed_batches += 1
            reason = _(
                "Erro do banco de dados ao gravar o lote das linhas %(first)d a %(last)d: o lote "
                "inteiro foi desfeito (nenhuma linha dele foi gravada); importe o arquivo de novo."
            ) % {"first": batch[0].line, "last": batch[-1].line}
            result.rejections.extend(Rejection(r.line, "", reason) for r in batch)
            result.rejected += len(batch)
        else:
            result.created += tally.created
            result.updated += tally.updated
            result.unchanged += tally.unchanged
            result.rejections.extend(tally.rejections)
            result.rejected += len(tally.rejections)
        batch.clear()
        if progress is not None:
            progress(processed, total)

    binary = open_file()
    try:
        for line, cells in _records(_text_stream(binary, encoding), header):
            processed += 1
            row, problems = _parse_row(cells, line, header)
            ref = _clean(cells[ref_at]) if ref_at < len(cells) else ""
            if ref and ref in seen:
                problems.append(
                    Rejection(
                        line,
                        ref_label,
                        _("Contrato repetido no arquivo (já na linha %(line)d).")
                        % {"line": seen[ref]},
                    )
                )
                row = None
            elif ref:
                seen[ref] = line
            if row is None:
                result.rejections.extend(problems)
                result.rejected += 1
                continue
            batch.append(row)
            if len(batch) >= batch_size:
                flush()
        flush()
    finally:
        binary.close()
    if progress is not None:
        progress(total, total)
    result.rejections.sort(key=lambda r: r.line)
    return result


def import_report_csv(result: ImportResult) -> bytes:
    """The rejected-rows report: ``linha;coluna;motivo``, one line per problem, UTF-8 with a
    BOM (spreadsheets in pt-BR open it as is). No value of the file is in it."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow([_("linha"), _("coluna"), _("motivo")])
    for rejection in result.rejections:
        writer.writerow([rejection.line, rejection.column, rejection.reason])
    return buffer.getvalue().encode("utf-8-sig")


# --- uploads through the admin (isp.ContractImport) ------------------------------------------

# A run whose worker sent no batch for this long is taken as lost and may start again.
RUN_STALE_AFTER = timedelta(minutes=10)
RUN_FIELDS = [
    "status",
    "file",
    "report",
    "error",
    "total_rows",
    "processed_rows",
    "created_count",
    "updated_count",
    "unchanged_count",
    "rejected_count",
    "started_at",
    "finished_at",
    "heartbeat_at",
]


def contract_import_submit(*, contract_import: ContractImport, user: Any) -> ContractImport:
    """Queue an uploaded CSV: the row is saved with its file (written encrypted by the default
    storage) and ``isp.contract_import_run`` starts after commit. Call with the file already
    checked (``contracts_import_check_header``)."""
    from isp.tasks import contract_import_run as run_task

    contract_import.created_by = user if getattr(user, "is_authenticated", False) else None
    contract_import.status = ContractImport.Status.PENDING
    contract_import.save()
    pk = contract_import.pk
    transaction.on_commit(lambda: run_task.delay(pk))
    logger.info("isp: customer import queued", extra={"import_id": pk})
    return contract_import


def contract_import_run(*, import_id: int) -> ContractImport | None:
    """Run a queued import (the task): import the file, store the rejected-rows report, and
    delete the uploaded file whatever happens. Safe to call twice: a finished run, or one
    another worker is running (a batch within ``RUN_STALE_AFTER``), is left alone."""
    now = timezone.now()
    with transaction.atomic():
        run = ContractImport.objects.select_for_update().filter(pk=import_id).first()
        if run is None or run.status in (ContractImport.Status.DONE, ContractImport.Status.FAILED):
            return run
        beat = run.heartbeat_at
        if run.status == ContractImport.Status.RUNNING and beat and beat > now - RUN_STALE_AFTER:
            return run
        run.status = ContractImport.Status.RUNNING
        run.started_at = run.heartbeat_at = now
        run.processed_rows = 0
        run.save(update_fields=["status", "started_at", "heartbeat_at", "processed_rows"])

    def progress(done: int, total: int) -> None:
        ContractImport.objects.filter(pk=run.pk).update(
            processed_rows=done, total_rows=total, heartbeat_at=timezone.now()
        )

    try:
        if not run.file:
            raise ImportFileError(_("O arquivo enviado não está mais disponível: envie-o de novo."))
        result = contracts_import(
            open_file=lambda: run.file.storage.open(run.file.name, "rb"),
            dry_run=run.dry_run,
            batch_size=int(getattr(settings, "CONTRACT_IMPORT_BATCH_SIZE", DEFAULT_BATCH_SIZE)),
            progress=progress,
        )
    except ImportFileError as exc:
        run.status, run.error = ContractImport.Status.FAILED, exc.message
    except Exception:
        logger.exception("isp: customer import failed", extra={"import_id": run.pk})
        run.status = ContractImport.Status.FAILED
        run.error = _("Erro inesperado durante a importação; os lotes já gravados ficam.")
    else:
        run.status = ContractImport.Status.DONE
        run.total_rows = run.processed_rows = result.total
        run.created_count, run.updated_count = result.created, result.updated
        run.unchanged_count, run.rejected_count = result.unchanged, result.rejected
        run.report.save(
            f"rejeitadas-{run.pk}.csv", ContentFile(import_report_csv(result)), save=False
        )
    finally:
        if run.file:
            run.file.storage.delete(run.file.name)  # personal data: never kept after the import
            run.file = ""
        run.finished_at = timezone.now()
        run.save(update_fields=RUN_FIELDS)
    logger.info("isp: customer import finished", extra={"import_id": run.pk, "status": run.status})
    return run

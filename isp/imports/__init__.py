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
file twice writes nothing the second time (``synced_at``, from which retention counts, is
renewed on unchanged contracts once it is a day old).

**Validation** (each problem of a row is one line of the report, with its line number, column
and a pt-BR reason; the row is rejected, the rest goes on): required fields; CPF check digits
(``isp.cpf``); phones normalised to E.164 with the 9th mobile digit
(``conversations.phones``) and checked as Brazilian numbers; known contract statuses;
lengths of the model's columns; numbers and BRL amounts; a contract repeated in the file (the
first occurrence wins); a contract that is the demo ERP's own record.

**Writes.** In batches of ``batch_size`` valid rows, each one transaction: new rows by ``COPY``
(PostgreSQL) or ``executemany``, every value through its field's ``get_db_prep_save`` (so
encrypted fields are encrypted by the field), changed rows by ``bulk_update``; the CPF and phone
index columns come from the models' own functions (``isp.imports.batches``). A batch that fails at the database is rolled
back whole and its rows reported; the next batch goes on. ``dry_run`` reads and classifies
every row and writes nothing.

A first pass decodes the whole file and counts its rows before anything is written, so a file
in the wrong encoding or with a broken header is refused whole (``ImportFileError``).
Nothing here logs a value of the file.

Modules: ``csvfile`` (columns, header, decoding), ``rows`` (one row's validation), ``batches``
(writing a batch), ``service`` (the import and its report), ``runs`` (uploads through the
admin, ``isp.ContractImport``).
"""

from isp.imports.csvfile import COLUMNS, DEFAULT_ENCODING, Column, ImportFileError
from isp.imports.rows import Rejection
from isp.imports.runs import RUN_STALE_AFTER, contract_import_run, contract_import_submit
from isp.imports.service import (
    DEFAULT_BATCH_SIZE,
    ImportResult,
    contracts_import,
    contracts_import_check_header,
    import_report_csv,
)

__all__ = [
    "COLUMNS",
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_ENCODING",
    "RUN_STALE_AFTER",
    "Column",
    "ImportFileError",
    "ImportResult",
    "Rejection",
    "contract_import_run",
    "contract_import_submit",
    "contracts_import",
    "contracts_import_check_header",
    "import_report_csv",
]

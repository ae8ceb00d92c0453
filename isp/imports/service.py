"""The import itself (``contracts_import``): the whole file checked first, then every row
validated and the valid ones written in batches, each one transaction; and its report."""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO

from django.db import DatabaseError, transaction
from django.utils.translation import gettext as _

from isp.imports.batches import write_batch
from isp.imports.csvfile import DEFAULT_ENCODING, open_checked, records, text_stream
from isp.imports.rows import Rejection, Row, clean, parse_row

logger = logging.getLogger("isp.imports")

DEFAULT_BATCH_SIZE = 1000


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


def contracts_import_check_header(
    *, open_file: Callable[[], IO[bytes]], encoding: str = DEFAULT_ENCODING
) -> list[str]:
    """Check the file before it is queued (the admin form): the whole file decodes and the
    header has the required columns. Returns the ignored column names; raises ImportFileError."""
    header, _rows = open_checked(open_file, encoding)
    return header.ignored


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
    header, total = open_checked(open_file, encoding)
    result = ImportResult(
        dry_run=dry_run, delimiter=header.delimiter, total=total, ignored_columns=header.ignored
    )
    present = set(header.positions)
    ref_at, ref_label = header.positions["ref"], header.labels["ref"]
    seen: dict[str, int] = {}  # contract → the line it first appeared on
    batch: list[Row] = []
    processed = 0
    batch_size = max(1, batch_size)

    def flush() -> None:
        if not batch:
            return
        try:
            with transaction.atomic():
                tally = write_batch(batch, present=present, dry_run=dry_run, label=ref_label)
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
        for line, cells in records(text_stream(binary, encoding), header):
            processed += 1
            row, problems = parse_row(cells, line, header)
            ref = clean(cells[ref_at]) if ref_at < len(cells) else ""
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

"""Import the ISP's customer base (contracts, holders, phones, plans, region tags) from the
ERP's CSV export. The format is in README ("Importing the customer base") and
``isp/fixtures/clientes-exemplo.csv``.

    manage.py import_customers FILE.csv [--dry-run] [--report REPORT.csv]
                                        [--batch-size 1000] [--encoding utf-8-sig]
                                        [--no-progress]

Every row is validated; valid rows are created or updated by contract number (running the same
file again changes nothing), in batches of ``--batch-size`` rows, each batch one transaction.
Rejected rows (line, column, reason; no value of the file) go to the report, by default
``FILE.rejeitadas.csv`` beside the file; stdout gets the summary, stderr the progress bar.

Exit status: 0 every row imported (or, with --dry-run, valid); 1 some rows rejected (the others
were imported); 2 the file was not imported at all (missing, unreadable, not UTF-8, wrong header).
"""

from __future__ import annotations

import sys
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from isp.imports import DEFAULT_ENCODING, ImportFileError, contracts_import, import_report_csv
from ispsupport.progress import ProgressBar

# How many rejections the summary lists (the report has all of them).
SHOWN_REJECTIONS = 20


class Command(BaseCommand):
    help = "Importa a base de clientes (contratos) de um CSV exportado do ERP."

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", help="o CSV exportado do ERP")
        parser.add_argument(
            "--dry-run", action="store_true", help="valida todas as linhas e não grava nada"
        )
        parser.add_argument(
            "--report",
            help="onde gravar o relatório das linhas rejeitadas "
            "(padrão: ARQUIVO.rejeitadas.csv ao lado do arquivo)",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=None,
            help="linhas por transação (padrão: CONTRACT_IMPORT_BATCH_SIZE, 1000)",
        )
        parser.add_argument(
            "--encoding", default=DEFAULT_ENCODING, help="codificação do arquivo (padrão: UTF-8)"
        )
        parser.add_argument("--no-progress", action="store_true", help="sem barra de progresso")

    def handle(self, *args, **options) -> None:
        path = Path(options["file"])
        if not path.is_file():
            raise CommandError(f"Arquivo não encontrado: {path}", returncode=2)
        report_path = Path(options["report"]) if options["report"] else _default_report(path)
        batch_size = options["batch_size"] or settings.CONTRACT_IMPORT_BATCH_SIZE
        bar = None
        if not options["no_progress"]:
            bar = ProgressBar(
                self._draw, "importando" if not options["dry_run"] else "validando", unit="linhas"
            )
        try:
            result = contracts_import(
                open_file=lambda: path.open("rb"),
                dry_run=options["dry_run"],
                batch_size=batch_size,
                encoding=options["encoding"],
                progress=bar.update if bar else None,
            )
        except ImportFileError as exc:
            raise CommandError(
                f"{path.name}: {exc.message} Nada foi importado.", returncode=2
            ) from exc
        finally:
            if bar:
                bar.close()
        try:
            report_path.write_bytes(import_report_csv(result))
        except OSError as exc:
            raise CommandError(
                f"Não foi possível gravar o relatório em {report_path}: {exc.strerror}",
                returncode=2,
            ) from exc

        verb = (
            ("seriam criados", "seriam atualizados")
            if result.dry_run
            else ("criados", "atualizados")
        )
        out = self.stdout.write
        out(
            f"{path.name}: {result.total} linha(s) lida(s){' (só validação: nada gravado)' if result.dry_run else ''}"
        )
        out(
            f"  {verb[0]}: {result.created} · {verb[1]}: {result.updated} · "
            f"sem alteração: {result.unchanged} · rejeitados: {result.rejected}"
        )
        if result.ignored_columns:
            out(f"  colunas ignoradas (desconhecidas): {', '.join(result.ignored_columns)}")
        if result.failed_batches:
            out(f"  lotes desfeitos por erro do banco de dados: {result.failed_batches}")
        for rejection in result.rejections[:SHOWN_REJECTIONS]:
            column = f" [{rejection.column}]" if rejection.column else ""
            out(f"  linha {rejection.line}{column}: {rejection.reason}")
        if len(result.rejections) > SHOWN_REJECTIONS:
            out(f"  … e mais {len(result.rejections) - SHOWN_REJECTIONS} motivo(s) no relatório")
        out(f"  relatório das linhas rejeitadas: {report_path}")
        if not result.ok:
            sys.exit(1)

    def _draw(self, text: str) -> None:
        self.stderr.write(text, ending="", style_func=str)
        self.stderr.flush()


def _default_report(path: Path) -> Path:
    return path.with_name(f"{path.stem}.rejeitadas.csv")

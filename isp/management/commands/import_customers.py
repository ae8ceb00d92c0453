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
from django.utils.translation import gettext as _

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
            raise CommandError(_("Arquivo não encontrado: %(path)s") % {"path": path}, returncode=2)
        report_path = Path(options["report"]) if options["report"] else _default_report(path)
        batch_size = options["batch_size"] or settings.CONTRACT_IMPORT_BATCH_SIZE
        bar = None
        if not options["no_progress"]:
            label = _("validando") if options["dry_run"] else _("importando")
            bar = ProgressBar(self._draw, label, unit=_("linhas"))
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
                _("%(file)s: %(reason)s Nada foi importado.")
                % {"file": path.name, "reason": exc.message},
                returncode=2,
            ) from exc
        finally:
            if bar:
                bar.close()
        try:
            report_path.write_bytes(import_report_csv(result))
        except OSError as exc:
            raise CommandError(
                _("Não foi possível gravar o relatório em %(path)s: %(reason)s")
                % {"path": report_path, "reason": exc.strerror},
                returncode=2,
            ) from exc

        out = self.stdout.write
        counts = {
            "created": result.created,
            "updated": result.updated,
            "unchanged": result.unchanged,
            "rejected": result.rejected,
        }
        if result.dry_run:
            out(
                _("%(file)s: %(rows)d linha(s) lida(s) (só validação: nada gravado)")
                % {"file": path.name, "rows": result.total}
            )
            line = _(
                "seriam criados: %(created)d · seriam atualizados: %(updated)d · "
                "sem alteração: %(unchanged)d · rejeitados: %(rejected)d"
            )
        else:
            out(
                _("%(file)s: %(rows)d linha(s) lida(s)") % {"file": path.name, "rows": result.total}
            )
            line = _(
                "criados: %(created)d · atualizados: %(updated)d · "
                "sem alteração: %(unchanged)d · rejeitados: %(rejected)d"
            )
        out("  " + line % counts)
        if result.ignored_columns:
            out(
                "  "
                + _("colunas ignoradas (desconhecidas): %(columns)s")
                % {"columns": ", ".join(result.ignored_columns)}
            )
        if result.failed_batches:
            out(
                "  "
                + _("lotes desfeitos por erro do banco de dados: %(n)d")
                % {"n": result.failed_batches}
            )
        for rejection in result.rejections[:SHOWN_REJECTIONS]:
            column = f" [{rejection.column}]" if rejection.column else ""
            out(
                "  "
                + _("linha %(line)d%(column)s: %(reason)s")
                % {"line": rejection.line, "column": column, "reason": rejection.reason}
            )
        if len(result.rejections) > SHOWN_REJECTIONS:
            out(
                "  "
                + _("… e mais %(n)d motivo(s) no relatório")
                % {"n": len(result.rejections) - SHOWN_REJECTIONS}
            )
        out("  " + _("relatório das linhas rejeitadas: %(path)s") % {"path": report_path})
        if not result.ok:
            sys.exit(1)

    def _draw(self, text: str) -> None:
        self.stderr.write(text, ending="", style_func=str)
        self.stderr.flush()


def _default_report(path: Path) -> Path:
    return path.with_name(f"{path.stem}.rejeitadas.csv")

"""Admin for the customer-base import: upload the ERP's CSV, follow it, download the report.

Supervisors and admins (``isp.add_contractimport``) upload a file on the "add" page; the form
checks that the whole file decodes and that the header has the required columns (the same
check as the import itself) and the import runs in Celery (``isp.contract_import_run``; inline
in ``make run``, which has no broker) — 100,000 rows take longer than a web request should, and
the run's page shows its progress (it refreshes itself while the import runs). When it ends the
uploaded file is deleted; the page shows the counts and links the rejected-rows report
(line, column, reason: no value of the file). Runs are read-only and leave by retention.
Imported by ``isp/admin.py``.
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from isp import imports
from isp.models import ContractImport


class ContractImportForm(forms.ModelForm):
    file = forms.FileField(
        label=_("arquivo CSV"),
        help_text=_(
            "Exportação do ERP em CSV (UTF-8, separado por ; ou ,) com as colunas contrato, "
            "titular, cpf, telefones, plano e situacao; opcionais: cidade, bairro, endereco, "
            "pop, olt, cto, download_mbps, upload_mbps, mensalidade. O arquivo é apagado ao fim "
            "da importação."
        ),
    )

    class Meta:
        model = ContractImport
        fields = ["file", "dry_run"]

    def clean_file(self):
        upload = self.cleaned_data["file"]
        limit = int(settings.CONTRACT_IMPORT_MAX_UPLOAD_MB)
        if upload.size > limit * 1024 * 1024:
            raise forms.ValidationError(
                gettext("O arquivo tem mais de %(limit)d MB.") % {"limit": limit}
            )
        if upload.size == 0:
            raise forms.ValidationError(gettext("O arquivo está vazio."))

        def reopen():
            upload.seek(0)
            return _Unclosable(upload)

        try:
            imports.contracts_import_check_header(open_file=reopen)
        except imports.ImportFileError as exc:
            raise forms.ValidationError(exc.message) from exc
        upload.seek(0)
        return upload


class _Unclosable:
    """The upload, for the header check: closing it would lose it before it is stored."""

    def __init__(self, upload) -> None:
        self._upload = upload

    def __getattr__(self, name):
        return getattr(self._upload, name)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def writable(self) -> bool:
        return False

    @property
    def closed(self) -> bool:
        return False

    def close(self) -> None:
        self._upload.seek(0)


@admin.register(ContractImport)
class ContractImportAdmin(admin.ModelAdmin):
    form = ContractImportForm
    list_display = (
        "__str__",
        "created_by",
        "status",
        "dry_run",
        "progress",
        "created_count",
        "updated_count",
        "unchanged_count",
        "rejected_count",
    )
    list_filter = ("status", "dry_run")
    list_select_related = ("created_by",)
    readonly_fields = (
        "status",
        "dry_run",
        "created_by",
        "created_at",
        "started_at",
        "finished_at",
        "progress",
        "created_count",
        "updated_count",
        "unchanged_count",
        "rejected_count",
        "error",
        "report_link",
    )
    change_form_template = "admin/isp/contractimport/change_form.html"

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["file", "dry_run"]
        return list(self.readonly_fields)

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.readonly_fields

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # a run is what happened: read-only

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # runs leave by retention (contract_imports), with their reports

    @admin.display(description=_("progresso"))
    def progress(self, obj: ContractImport) -> str:
        if obj.status == ContractImport.Status.PENDING:
            return gettext("na fila")
        if not obj.total_rows:
            return "—" if obj.status != ContractImport.Status.RUNNING else gettext("lendo…")
        percent = int(100 * obj.processed_rows / obj.total_rows)
        return gettext("%(done)d de %(total)d linhas (%(percent)d%%)") % {
            "done": obj.processed_rows,
            "total": obj.total_rows,
            "percent": percent,
        }

    @admin.display(description=_("relatório das linhas rejeitadas"))
    def report_link(self, obj: ContractImport) -> str:
        if not obj.report:
            return "—"
        url = reverse("admin:isp_contractimport_report", args=[obj.pk])
        return format_html('<a href="{}" download>{}</a>', url, gettext("Baixar (CSV)"))

    def save_model(self, request, obj, form, change) -> None:
        imports.contract_import_submit(contract_import=obj, user=request.user)

    def response_add(self, request, obj, post_url_continue=None):
        # Straight to the run's page, where the progress shows.
        return HttpResponseRedirect(reverse("admin:isp_contractimport_change", args=[obj.pk]))

    def get_urls(self):
        urls = [
            path(
                "<int:pk>/relatorio.csv",
                self.admin_site.admin_view(self.report_view),
                name="isp_contractimport_report",
            )
        ]
        return urls + super().get_urls()

    def report_view(self, request, pk: int):
        if not self.has_view_permission(request):
            raise PermissionDenied
        run = get_object_or_404(ContractImport, pk=pk)
        if not run.report:
            raise Http404
        return FileResponse(
            run.report.open("rb"),
            as_attachment=True,
            filename=f"importacao-{run.pk}-rejeitadas.csv",
            content_type="text/csv; charset=utf-8",
        )

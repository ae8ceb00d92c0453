"""The DPO's tools in /admin/ (pt-BR): requests with their deadline clock, exports, erasure,
consent ledger, legal holds, retained service records, the access log, incidents, retention.

Admin actions call services; nothing here writes rules of its own.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from accounts.models import Role
from compliance import services
from compliance.models import (
    AccessLogEntry,
    ConsentRecord,
    DataExport,
    DataSubjectRequest,
    Incident,
    LegalHold,
    RequestEvent,
    RetentionRun,
    ServiceRecordHold,
)
from compliance.services.incidents import incident_fill_deadlines
from compliance.views import client_ip


class ReadOnlyMixin:
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class DeadlineFilter(admin.SimpleListFilter):
    title = _("prazo (15 dias)")
    parameter_name = "prazo"

    def lookups(self, request, model_admin):
        return [
            ("overdue", _("Vencidas")),
            ("near", _("Vencem em breve")),
            ("ok", _("No prazo")),
        ]

    def queryset(self, request, queryset):
        now = timezone.now()
        near = now + timedelta(days=settings.COMPLIANCE_DSR_NEAR_DUE_DAYS)
        open_qs = queryset.filter(status__in=DataSubjectRequest.OPEN_STATUSES)
        if self.value() == "overdue":
            return open_qs.filter(due_at__lt=now)
        if self.value() == "near":
            return open_qs.filter(due_at__gte=now, due_at__lte=near)
        if self.value() == "ok":
            return open_qs.filter(due_at__gt=near)
        return queryset


class RequestEventInline(ReadOnlyMixin, admin.TabularInline):
    model = RequestEvent
    fields = ("created_at", "from_status", "to_status", "actor", "note")
    readonly_fields = fields
    extra = 0


class DataExportInline(ReadOnlyMixin, admin.TabularInline):
    model = DataExport
    fields = ("created_at", "status", "progress", "expires_at", "download_count", "link")
    readonly_fields = fields
    extra = 0

    @admin.display(description=_("download"))
    def link(self, obj: DataExport) -> str:
        if not obj.is_downloadable():
            return "—"
        url = reverse("compliance:export_download", args=[obj.token])
        return format_html('<a href="{}">{}</a>', url, _("baixar ZIP (registrado)"))


@admin.register(DataSubjectRequest)
class DataSubjectRequestAdmin(admin.ModelAdmin):
    change_list_template = "admin/compliance/datasubjectrequest/change_list.html"
    list_display = (
        "id",
        "kind",
        "subject",
        "status",
        "received_at",
        "due_at",
        "deadline",
        "answer_channel",
        "answer_delivered",
    )
    list_filter = (DeadlineFilter, "status", "kind", "intake_channel")
    date_hierarchy = "received_at"
    raw_id_fields = ("customer",)
    inlines = [RequestEventInline, DataExportInline]
    actions = ["verify_identity_document", "make_export", "run_erasure", "answer_confirmation"]
    readonly_fields = (
        "status",
        "due_at",
        "identity_verified_at",
        "identity_verified_by",
        "identity_method",
        "answered_at",
        "answer_delivered",
        "answer_notified_at",
        "retained_legal_basis",
        "third_parties",
        "erasure_report",
        "alerted_at",
        "created_by",
    )
    fieldsets = (
        (None, {"fields": ("customer", "kind", "status", "received_at", "due_at", "assigned_to")}),
        (
            _("Canal"),
            {"fields": ("intake_channel", "answer_channel", "answer_address")},
        ),
        (
            _("Titular e identidade"),
            {
                "fields": (
                    "by_representative",
                    "representative_name",
                    "identity_verified_at",
                    "identity_verified_by",
                    "identity_method",
                    "identity_note",
                )
            },
        ),
        (_("Pedido"), {"fields": ("details",)}),
        (
            _("Resposta"),
            {
                "fields": (
                    "answer_text",
                    "answered_at",
                    "answer_delivered",
                    "answer_notified_at",
                    "retained_legal_basis",
                    "third_parties",
                    "erasure_report",
                )
            },
        ),
        (_("Controle"), {"fields": ("alerted_at", "created_by")}),
    )

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("customer")

    @admin.display(description=_("titular"))
    def subject(self, obj: DataSubjectRequest) -> str:
        c = obj.customer
        if c is None:
            return "—"
        return c.masked_phone or f"#{c.pk}"

    @admin.display(description=_("situação do prazo"))
    def deadline(self, obj: DataSubjectRequest) -> str:
        if not obj.is_open:
            return "—"
        now = timezone.now()
        if obj.due_at < now:
            return format_html('<strong style="color:#b00">{}</strong>', _("VENCIDA"))
        days = (obj.due_at - now).days
        if days <= settings.COMPLIANCE_DSR_NEAR_DUE_DAYS:
            return format_html(
                '<strong style="color:#c60">{}</strong>', _("vence em %d dia(s)") % days
            )
        return _("%d dias") % days

    def changelist_view(self, request, extra_context=None):
        now = timezone.now()
        near = now + timedelta(days=settings.COMPLIANCE_DSR_NEAR_DUE_DAYS)
        open_qs = DataSubjectRequest.objects.filter(status__in=DataSubjectRequest.OPEN_STATUSES)
        extra_context = {
            **(extra_context or {}),
            "dsr_summary": {
                "open": open_qs.count(),
                "overdue": open_qs.filter(due_at__lt=now).count(),
                "near": open_qs.filter(due_at__gte=now, due_at__lte=near).count(),
            },
            "can_download_record": request.user.has_perm("compliance.view_datasubjectrequest"),
        }
        return super().changelist_view(request, extra_context=extra_context)

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ("status", "due_at", "answered_at", "answer_delivered", "erasure_report")
        return (*self.readonly_fields, "customer", "kind", "received_at")

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        try:
            created = services.dsr_open(
                kind=obj.kind,
                customer=obj.customer,
                intake_channel=obj.intake_channel,
                answer_channel=obj.answer_channel,
                answer_address=obj.answer_address,
                details=obj.details,
                by_representative=obj.by_representative,
                representative_name=obj.representative_name,
                created_by=request.user,
                received_at=obj.received_at,
            )
        except services.RequestError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            raise PermissionDenied(exc.message) from exc
        obj.pk = created.pk
        obj.refresh_from_db()

    def _each(self, request, queryset, func, ok_message):
        done = 0
        for obj in queryset:
            try:
                func(obj)
                done += 1
            except services.RequestError as exc:
                self.message_user(request, f"#{obj.pk}: {exc.message}", messages.ERROR)
        if done:
            self.message_user(request, ok_message % {"n": done}, messages.SUCCESS)

    @admin.action(description=_("Registrar identidade verificada por documento"))
    def verify_identity_document(self, request, queryset):
        self._each(
            request,
            queryset,
            lambda o: services.dsr_verify_identity(
                request=o,
                method=DataSubjectRequest.IdentityMethod.DOCUMENT,
                actor=request.user,
            ),
            _("%(n)d requisição(ões) com identidade verificada."),
        )

    @admin.action(description=_("Gerar exportação (ZIP) dos dados do titular"))
    def make_export(self, request, queryset):
        self._each(
            request,
            queryset,
            lambda o: services.export_create(request=o, actor=request.user, ip=client_ip(request)),
            _("%(n)d exportação(ões) na fila; acompanhe o progresso na requisição."),
        )

    @admin.action(description=_("Executar a eliminação (irreversível)"))
    def run_erasure(self, request, queryset):
        self._each(
            request,
            queryset,
            lambda o: services.erasure_start(request=o, actor=request.user),
            _("%(n)d eliminação(ões) iniciada(s)."),
        )

    @admin.action(description=_("Responder com a confirmação simplificada (art. 19, I)"))
    def answer_confirmation(self, request, queryset):
        from compliance.services.dsr import dsr_confirmation_text

        self._each(
            request,
            queryset,
            lambda o: services.dsr_answer(
                request=o, text=dsr_confirmation_text(o.customer), actor=request.user
            ),
            _("%(n)d resposta(s) enviada(s)."),
        )

    def get_urls(self):
        return [
            path(
                "registro-de-tratamento.<str:fmt>",
                self.admin_site.admin_view(self.processing_record_view),
                name="compliance_processing_record",
            ),
            *super().get_urls(),
        ]

    def processing_record_view(self, request: HttpRequest, fmt: str) -> HttpResponse:
        """The Art. 37 record as HTML, CSV or JSON (DPO and admins)."""
        if not request.user.has_perm("compliance.view_datasubjectrequest"):
            raise PermissionDenied
        if fmt == "html":
            return HttpResponse(services.processing_record_html(), content_type="text/html")
        if fmt == "csv":
            response = HttpResponse(services.processing_record_csv(), content_type="text/csv")
        elif fmt == "json":
            response = HttpResponse(
                services.processing_record_json(), content_type="application/json"
            )
        else:
            raise PermissionDenied
        response["Content-Disposition"] = f'attachment; filename="registro-de-tratamento.{fmt}"'
        return response


@admin.register(ConsentRecord)
class ConsentRecordAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("created_at", "customer_ref", "purpose", "action", "text_version", "channel")
    list_filter = ("purpose", "action", "channel")
    date_hierarchy = "created_at"

    @admin.display(description=_("cliente"))
    def customer_ref(self, obj: ConsentRecord) -> str:
        return f"#{obj.customer_id}"


@admin.register(LegalHold)
class LegalHoldAdmin(admin.ModelAdmin):
    list_display = ("id", "customer", "reason", "legal_basis", "until", "created_at", "released_at")
    list_filter = ("released_at",)
    raw_id_fields = ("customer",)
    readonly_fields = ("created_by", "created_at", "released_at")
    actions = ["release"]

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    @admin.action(description=_("Liberar a retenção"))
    def release(self, request, queryset):
        for hold in queryset.filter(released_at__isnull=True):
            services.legal_hold_release(hold=hold, actor=request.user)


@admin.register(ServiceRecordHold)
class ServiceRecordHoldAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """Blocked records (Art. 16 I): only the DPO sees them, and each opening is logged."""

    list_display = ("protocol", "opened_at", "closed_at", "classification", "retain_until")
    search_fields = ("protocol",)
    exclude = ("subject_digest",)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        services.access_log_record(
            user=request.user,
            customer_id=None,
            action=AccessLogEntry.Action.VIEW_SERVICE_RECORD,
            ip=client_ip(request),
            object_type="servicerecordhold",
            object_id=object_id,
        )
        return super().change_view(request, object_id, form_url, extra_context)


@admin.register(AccessLogEntry)
class AccessLogEntryAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """Append-only: nobody may add, change or delete (not even superusers). Supervisors see
    the rows about their teams' conversations; the DPO and admins see everything."""

    list_display = (
        "id",
        "created_at",
        "username",
        "action",
        "customer_id",
        "object_type",
        "object_id",
        "ip",
    )
    list_filter = ("action", "created_at")
    search_fields = ("username", "=customer_id", "=object_id")
    date_hierarchy = "created_at"

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        user = request.user
        if user.is_superuser or user.has_role(Role.DPO, Role.ADMIN):
            return qs
        return qs.filter(team_id__in=list(user.teams.values_list("pk", flat=True)))

    def get_actions(self, request):
        return {}


@admin.register(Incident)
class IncidentAdmin(admin.ModelAdmin):
    list_display = (
        "title",
        "discovered_at",
        "risk_assessment",
        "anpd_due_at",
        "anpd_notified_at",
        "subjects_notified_at",
        "notice_link",
    )
    list_filter = ("risk_assessment",)
    date_hierarchy = "discovered_at"
    readonly_fields = (
        "anpd_due_at",
        "subjects_due_at",
        "complement_due_at",
        "retain_until",
        "created_by",
        "created_at",
    )

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # kept at least 5 years (Res. CD/ANPD 15/2024 art. 10); retention purges

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        incident_fill_deadlines(obj)
        super().save_model(request, obj, form, change)

    @admin.display(description=_("comunicação"))
    def notice_link(self, obj: Incident) -> str:
        url = reverse("admin:compliance_incident_notice", args=[obj.pk])
        return format_html('<a href="{}">{}</a>', url, _("rascunho"))

    def get_urls(self):
        return [
            path(
                "<int:pk>/comunicacao/",
                self.admin_site.admin_view(self.notice_view),
                name="compliance_incident_notice",
            ),
            *super().get_urls(),
        ]

    def notice_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if not request.user.has_perm("compliance.view_incident"):
            raise PermissionDenied
        incident = Incident.objects.get(pk=pk)
        return HttpResponse(
            services.incident_notice_draft(incident), content_type="text/plain; charset=utf-8"
        )


@admin.register(RetentionRun)
class RetentionRunAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("started_at", "finished_at", "dry_run", "counts", "error")

"""Admin for outages: the register, the conversations attached, and detection's alerts.

Supervisors and admins register and edit outages (audited by django-auditlog); closing one is
the action "Encerrar falha" (``isp.outages.outage_resolve``), which sends the all-clear. An
alert proposes an outage: its link opens the add form pre-filled with the region, and saving
that form marks the alert as handled. Imported by ``isp/admin.py``.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import admin, messages
from django.db.models import Count, Q
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from isp import outages
from isp.models import Outage, OutageAlert, OutageConversation


@admin.register(Outage)
class OutageAdmin(admin.ModelAdmin):
    list_display = (
        "title",
        "region",
        "status",
        "starts_at",
        "estimated_end_at",
        "attached",
        "notified",
    )
    list_filter = ("status", "city")
    search_fields = ("title", "city", "neighbourhood", "pop", "olt", "box")
    date_hierarchy = "starts_at"
    actions = ["resolve"]
    readonly_fields = (
        "status",
        "created_by",
        "created_at",
        "updated_at",
        "resolved_at",
        "resolved_by",
        "all_clear_summary",
    )
    fieldsets = (
        (None, {"fields": ("title", "status", "starts_at", "estimated_end_at")}),
        (
            _("Região afetada (qualquer combinação)"),
            {"fields": ("city", "neighbourhood", "pop", "olt", "box")},
        ),
        (_("O que o robô diz ao cliente"), {"fields": ("public_message",)}),
        (
            _("Registro"),
            {
                "fields": (
                    "created_by",
                    "created_at",
                    "updated_at",
                    "resolved_by",
                    "resolved_at",
                    "all_clear_summary",
                )
            },
        ),
    )

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                n_attached=Count("attachments"),
                n_notified=Count(
                    "attachments",
                    filter=Q(
                        attachments__all_clear__in=[
                            OutageConversation.AllClear.TEXT,
                            OutageConversation.AllClear.TEMPLATE,
                        ]
                    ),
                ),
            )
        )

    @admin.display(description=_("região"))
    def region(self, obj: Outage) -> str:
        return obj.region_label

    @admin.display(description=_("conversas vinculadas"), ordering="n_attached")
    def attached(self, obj: Outage) -> int:
        return getattr(obj, "n_attached", 0)

    @admin.display(description=_("clientes avisados do fim"), ordering="n_notified")
    def notified(self, obj: Outage) -> int:
        return getattr(obj, "n_notified", 0)

    @admin.display(description=_("aviso de normalização"))
    def all_clear_summary(self, obj: Outage) -> str:
        if obj.pk is None:
            return "—"
        rows = (
            obj.attachments.values_list("all_clear").annotate(n=Count("pk")).order_by("all_clear")
        )
        labels = dict(OutageConversation.AllClear.choices)
        return " · ".join(f"{labels.get(state, state)}: {n}" for state, n in rows) or "—"

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # the register is history: close an outage, never delete it

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None and not obj.is_open:
            # A closed outage is a record: the customers were already told it ended.
            fields += ["title", "starts_at", "estimated_end_at", "public_message"]
            fields += ["city", "neighbourhood", "pop", "olt", "box"]
        return fields

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)
        alert_id = request.GET.get("alert", "")
        if not change and alert_id.isdigit():
            alert = OutageAlert.objects.filter(pk=int(alert_id)).first()
            if alert is not None:
                outages.outage_alert_accept(alert=alert, outage=obj, user=request.user)

    @admin.action(
        description=_("Encerrar falha (avisa os clientes vinculados)"), permissions=["change"]
    )
    def resolve(self, request, queryset):
        done = 0
        for outage in queryset.filter(status=Outage.Status.OPEN):
            try:
                outages.outage_resolve(outage=outage, user=request.user)
            except outages.OutageError as exc:
                self.message_user(request, exc.message, messages.WARNING)
                continue
            done += 1
        skipped = queryset.count() - done
        if done:
            self.message_user(
                request,
                ngettext(
                    "%(n)d falha encerrada; os clientes vinculados estão sendo avisados.",
                    "%(n)d falhas encerradas; os clientes vinculados estão sendo avisados.",
                    done,
                )
                % {"n": done},
                messages.SUCCESS,
            )
        if skipped:
            self.message_user(
                request,
                _("%(n)d já estava(m) encerrada(s).") % {"n": skipped},
                messages.WARNING,
            )


@admin.register(OutageConversation)
class OutageConversationAdmin(admin.ModelAdmin):
    """Read-only: written by the bot (attach) and the all-clear task."""

    list_display = (
        "outage",
        "conversation",
        "contract_ref",
        "attached_at",
        "all_clear",
        "all_clear_at",
    )
    list_filter = ("all_clear", "outage")
    list_select_related = ("outage", "conversation")
    search_fields = ("contract_ref", "conversation__protocol")
    readonly_fields = (
        "outage",
        "conversation",
        "customer",
        "contract_ref",
        "attached_at",
        "all_clear",
        "all_clear_message",
        "all_clear_at",
    )

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(OutageAlert)
class OutageAlertAdmin(admin.ModelAdmin):
    """Detection's proposals; "Registrar falha" opens the outage form pre-filled."""

    list_display = (
        "created_at",
        "tag",
        "region",
        "customers",
        "window_minutes",
        "status",
        "propose",
    )
    list_filter = ("status", "tag")
    actions = ["dismiss"]
    readonly_fields = (
        "tag",
        "city",
        "neighbourhood",
        "pop",
        "olt",
        "box",
        "customers",
        "window_minutes",
        "status",
        "created_at",
        "outage",
        "handled_by",
        "handled_at",
        "propose",
    )

    @admin.display(description=_("região"))
    def region(self, obj: OutageAlert) -> str:
        return obj.region_label

    @admin.display(description=_("falha"))
    def propose(self, obj: OutageAlert) -> str:
        if obj.status != OutageAlert.Status.PENDING:
            return str(obj.outage or "—")
        return format_html('<a href="{}">{}</a>', outage_add_url(obj), _("Registrar falha"))

    def has_add_permission(self, request) -> bool:
        return False  # raised by detection only

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.action(description=_("Descartar (não é uma falha)"), permissions=["change"])
    def dismiss(self, request, queryset):
        n = sum(
            outages.outage_alert_dismiss(alert=alert, user=request.user)
            for alert in queryset.filter(status=OutageAlert.Status.PENDING)
        )
        self.message_user(request, _("%(n)d alerta(s) descartado(s).") % {"n": n}, messages.SUCCESS)


def outage_add_url(alert: OutageAlert) -> str:
    """The outage add form, pre-filled with the alert's region (and linked back to it)."""
    params = outages.outage_alert_prefill(alert)
    params["alert"] = str(alert.pk)
    return f"{reverse('admin:isp_outage_add')}?{urlencode(params)}"

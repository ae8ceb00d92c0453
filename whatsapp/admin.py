"""WhatsApp channel in admin: raw webhook events (read-only) and message templates."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from ispsupport.admin_history import AuditHistoryMixin
from whatsapp.models import EarlyStatus, MessageTemplate, WebhookEvent


@admin.register(WebhookEvent)
class WebhookEventAdmin(admin.ModelAdmin):
    list_display = ("pk", "received_at", "status", "message_count", "status_count", "note")
    list_filter = ("status",)
    date_hierarchy = "received_at"
    # The raw body holds personal data: it is not shown in lists and never editable.
    exclude = ("body",)
    readonly_fields = (
        "received_at",
        "body_sha256",
        "status",
        "attempts",
        "processed_at",
        "message_count",
        "status_count",
        "note",
        "request_id",
    )

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(MessageTemplate)
class MessageTemplateAdmin(AuditHistoryMixin, admin.ModelAdmin):
    list_display = ("name", "language", "category", "status", "parameter_count", "updated_at")
    list_filter = ("status", "category", "language")
    search_fields = ("name", "body_text")


@admin.register(EarlyStatus)
class EarlyStatusAdmin(admin.ModelAdmin):
    list_display = ("wamid", "status", "timestamp", "created_at")
    readonly_fields = [f.name for f in EarlyStatus._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.display(description=_("status"))
    def status_label(self, obj: EarlyStatus) -> str:
        return obj.status

"""Read-mostly admin for the core models; state changes belong to services (see issue tools)."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from conversations.models import (
    CannedResponse,
    Conversation,
    ConversationEvent,
    ConversationNote,
    Customer,
    Message,
)


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ("__str__", "masked_phone", "contract_ref", "status", "created_at")
    list_filter = ("status",)
    search_fields = ("name", "phone_e164", "wa_id", "contract_ref")
    readonly_fields = ("wa_id", "bsuid", "parent_bsuid", "phone_e164", "created_at", "updated_at")


class MessageInline(admin.TabularInline):
    model = Message
    fields = ("created_at", "direction", "sender_kind", "type", "text", "status", "error_code")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("created_at", "pk")
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class EventInline(admin.TabularInline):
    model = ConversationEvent
    fields = ("created_at", "kind", "actor", "data")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = (
        "protocol",
        "customer",
        "state",
        "priority",
        "team",
        "assigned_agent",
        "opened_at",
    )
    list_filter = ("state", "priority", "team", "resolution")
    search_fields = ("protocol", "customer__name", "customer__phone_e164")
    list_select_related = ("customer", "team", "assigned_agent")
    readonly_fields = (
        "protocol",
        "customer",
        "state",
        "assigned_agent",
        "opened_at",
        "waiting_since",
        "first_response_at",
        "last_customer_message_at",
        "last_message_at",
        "closed_at",
        "closed_by",
        "resolution",
        "csat_score",
        "bot_attempts",
        "template_required",
    )
    fields = (*readonly_fields, "team", "priority", "resolution_note")
    inlines = [EventInline, MessageInline]
    date_hierarchy = "opened_at"


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ("pk", "conversation", "direction", "type", "status", "created_at")
    list_filter = ("direction", "type", "status", "sender_kind")
    search_fields = ("wamid", "conversation__protocol")
    list_select_related = ("conversation",)
    readonly_fields = [f.name for f in Message._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.display(description=_("conversa"))
    def conversation_protocol(self, obj: Message) -> str:
        return obj.conversation.protocol


@admin.register(CannedResponse)
class CannedResponseAdmin(admin.ModelAdmin):
    """Ready answers for the console's ``/`` menu; variables: {{nome}}, {{protocolo}},
    {{atendente}}, {{empresa}}."""

    list_display = ("shortcut", "title", "team", "is_active", "updated_at")
    list_filter = ("is_active", "team")
    search_fields = ("shortcut", "title", "body")
    list_select_related = ("team",)


@admin.register(ConversationNote)
class ConversationNoteAdmin(admin.ModelAdmin):
    list_display = ("conversation", "author", "created_at")
    search_fields = ("conversation__protocol",)
    list_select_related = ("conversation", "author")
    readonly_fields = ("conversation", "author", "text", "created_at")

    def has_add_permission(self, request) -> bool:
        return False

"""Read-mostly admin for the core models; state changes belong to services (see issue tools)."""

import re

from django.contrib import admin
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from conversations.identity import customer_identity_q, customer_name_q
from conversations.models import (
    CannedResponse,
    Conversation,
    ConversationEvent,
    ConversationNote,
    Customer,
    Message,
)


def customer_search_q(term: str, *, prefix: str = "") -> Q:
    """The admin's search over customers: whole name words, a complete phone (any spelling),
    wa_id, BSUID or CPF — through the blind indexes, since those fields are encrypted — or
    the contract reference (plain text, contains)."""
    term = term.strip()
    q = Q(**{f"{prefix}contract_ref__icontains": term}) if term else Q(pk__in=[])
    q |= customer_identity_q(phone=term, national=True, prefix=prefix)
    q |= customer_identity_q(wa_id=term, prefix=prefix)
    q |= customer_identity_q(bsuid=term, prefix=prefix)
    if len(re.sub(r"\D", "", term)) == 11:
        q |= customer_identity_q(cpf=term, prefix=prefix)
    name = customer_name_q(term, prefix=prefix)
    return q | name if name is not None else q


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ("__str__", "masked_phone", "contract_ref", "status", "created_at")
    list_filter = ("status",)
    # Searched by customer_search_q (encrypted fields have no SQL search); the non-empty tuple
    # keeps the admin's search box.
    search_fields = ("contract_ref",)
    search_help_text = _(
        "Palavras inteiras do nome, telefone completo (com ou sem o 9), CPF, wa_id ou contrato."
    )
    readonly_fields = ("wa_id", "bsuid", "parent_bsuid", "phone_e164", "created_at", "updated_at")

    def get_search_results(self, request, queryset, search_term):
        if not search_term.strip():
            return queryset, False
        return queryset.filter(customer_search_q(search_term)), False


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
    search_fields = ("protocol",)
    search_help_text = _("Protocolo, ou o cliente: palavras do nome, telefone completo ou CPF.")
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

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        return queryset.filter(
            Q(protocol__startswith=term) | customer_search_q(term, prefix="customer__")
        ), False


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

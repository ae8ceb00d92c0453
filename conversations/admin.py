"""The supervisors' workplace for conversations, and read-mostly admin for the other models.

Nothing here writes a conversation directly: the list's actions call
``services.conversation_supervise`` (``conversations.admin_actions``), the change page is
read-only. Lists follow the console's visibility (``selectors.conversations_for_admin``); every
conversation page that shows messages writes the personal-data access log.
"""

from __future__ import annotations

import re

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.timesince import timesince
from django.utils.translation import gettext_lazy as _

from accounts.models import Role, Team
from compliance.admin_mixins import AccessLoggedAdminMixin
from compliance.models import AccessLogEntry
from compliance.services import sac_deadline
from conversations import access, admin_actions, hooks, selectors, sla
from conversations.admin_filters import (
    IntentFilter,
    RequestKindFilter,
    SlaFilter,
    WaitingLongerFilter,
    request_now,
)
from conversations.identity import customer_identity_q, customer_name_q
from conversations.models import (
    CannedResponse,
    Conversation,
    ConversationEvent,
    ConversationNote,
    Customer,
    Message,
)
from ispsupport.admin_history import AuditHistoryMixin
from ispsupport.security import client_ip

# How many messages the conversation page shows (the newest; the console pages the rest).
HISTORY_LIMIT = 200
SLA_PAGE_LIMIT = 200


def _sees_everything(user) -> bool:
    return user.is_superuser or user.has_role(Role.ADMIN)


def _team_scoped(user) -> bool:
    """Agents and supervisors see their teams' configuration; admins all (other roles have
    no permission on it anyway)."""
    return not _sees_everything(user) and user.has_role(Role.AGENT, Role.SUPERVISOR)


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
class CustomerAdmin(AccessLoggedAdminMixin, admin.ModelAdmin):
    list_display = ("__str__", "phone", "contract_ref", "status", "created_at")
    list_filter = ("status",)
    # Searched by customer_search_q (encrypted fields have no SQL search); the non-empty tuple
    # keeps the admin's search box.
    search_fields = ("contract_ref",)
    search_help_text = _(
        "Palavras inteiras do nome, telefone completo (com ou sem o 9), CPF, wa_id ou contrato."
    )
    readonly_fields = ("wa_id", "bsuid", "parent_bsuid", "phone_e164", "created_at", "updated_at")
    access_log_object_type = "customer"

    def get_queryset(self, request):
        # The console's rule: customers of conversations the user may see (admins, DPO: all).
        return selectors.customers_for_admin(request.user, super().get_queryset(request))

    def access_log_customer_id(self, obj: Customer) -> int:
        return obj.pk

    @admin.display(description=_("telefone"))
    def phone(self, obj: Customer) -> str:
        return obj.masked_phone

    def get_search_results(self, request, queryset, search_term):
        if not search_term.strip():
            return queryset, False
        return queryset.filter(customer_search_q(search_term)), False


class EventInline(admin.TabularInline):
    model = ConversationEvent
    fields = ("created_at", "kind", "actor", "data")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("created_at", "pk")

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    """Supervisors find conversations (filters, protocol/customer search), act on them in bulk
    (reassign, transfer, priority, close, return to queue, demand kind) and follow the SLA
    (the "SLA" column and filter, and the SLA page of their teams)."""

    change_list_template = "admin/conversations/conversation/change_list.html"
    change_form_template = "admin/conversations/conversation/change_form.html"
    list_display = (
        "protocol",
        "customer",
        "state",
        "priority",
        "team",
        "assigned_agent",
        "request_kind",
        "intent_label",
        "sla_status",
        "waiting_for",
        "opened_at",
    )
    list_filter = (
        "state",
        ("team", admin.RelatedOnlyFieldListFilter),
        ("assigned_agent", admin.RelatedOnlyFieldListFilter),
        "priority",
        IntentFilter,
        RequestKindFilter,
        SlaFilter,
        WaitingLongerFilter,
        "resolution",
    )
    search_fields = ("protocol",)  # widened in get_search_results: the console's search
    search_help_text = _("Protocolo, nome ou telefone do cliente.")
    list_select_related = ("customer", "team", "assigned_agent")
    list_per_page = 50
    date_hierarchy = "opened_at"
    fieldsets = (
        (
            _("Conversa"),
            {
                "fields": (
                    "protocol",
                    "customer",
                    "state",
                    "team",
                    "assigned_agent",
                    "priority",
                    "intent_label",
                    "request_kind",
                    "request_kind_source",
                    "bot_attempts",
                    "template_required",
                )
            },
        ),
        (
            _("SLA e prazos"),
            {
                "fields": (
                    "sla_status",
                    "sla_started_at",
                    "first_response_due_at",
                    "first_response_at",
                    "resolution_due_at",
                    "anatel_due_at",
                    "anatel_basis",
                )
            },
        ),
        (
            _("Datas e encerramento"),
            {
                "fields": (
                    "opened_at",
                    "waiting_since",
                    "last_customer_message_at",
                    "last_message_at",
                    "closed_at",
                    "closed_by",
                    "resolution",
                    "resolution_note",
                    "csat_score",
                )
            },
        ),
    )
    inlines = [EventInline]
    actions = [admin_actions.make_admin_action(name) for name in admin_actions.ACTIONS]

    # --- who sees what ------------------------------------------------------------------------

    def get_queryset(self, request):
        qs = selectors.conversations_for_admin(request.user).select_related(
            "customer", "team", "assigned_agent", "closed_by"
        )
        return sla.annotate(qs, request_now(request))

    def get_readonly_fields(self, request, obj=None):
        return [name for _title, options in self.fieldsets for name in options["fields"]]

    def has_supervise_permission(self, request) -> bool:
        """The bulk actions: supervisors and admins (each conversation is checked again by
        the service against the supervisor's teams)."""
        return access.user_is_supervisor(request.user)

    def has_add_permission(self, request) -> bool:
        return False  # conversations open when customers write

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # erasure and retention remove conversations (compliance), nobody else

    # --- columns ------------------------------------------------------------------------------

    @admin.display(description=_("intenção"), ordering="intent")
    def intent_label(self, obj: Conversation) -> str:
        if not obj.intent:
            return "—"
        return hooks.label("intent", obj.intent)

    @admin.display(description=_("SLA"))
    def sla_status(self, obj: Conversation) -> str:
        status = sla.row_status(obj)
        if status == "breached":
            which = [
                label
                for flag, label in (
                    (obj.sla_first_response_breached, _("1ª resposta")),
                    (obj.sla_resolution_breached, _("resolução")),
                    (obj.sla_anatel_breached, _("Anatel")),
                )
                if flag
            ]
            return format_html(
                '<strong style="color:#b00">{}</strong> ({})',
                _("vencido"),
                ", ".join(str(w) for w in which),
            )
        if status == "near_due":
            return format_html(
                '<span style="color:#c60">{}</span> {}',
                _("a vencer"),
                timezone.localtime(obj.sla_next_due_at).strftime("%d/%m %H:%M"),
            )
        if obj.sla_next_due_at:
            return format_html(
                "{} {}",
                _("no prazo até"),
                timezone.localtime(obj.sla_next_due_at).strftime("%d/%m %H:%M"),
            )
        return "—"

    @admin.display(description=_("aguardando há"), ordering="waiting_since")
    def waiting_for(self, obj: Conversation) -> str:
        if obj.state != Conversation.State.WAITING or obj.waiting_since is None:
            return "—"
        return timesince(obj.waiting_since, now=timezone.now())

    @admin.display(description=_("base legal do prazo Anatel"))
    def anatel_basis(self, obj: Conversation) -> str:
        if not obj.request_kind:
            return str(_("Defina o tipo de demanda para calcular o prazo."))
        return str(sac_deadline(opened_at=obj.opened_at, kind=obj.request_kind).basis)

    # --- pages --------------------------------------------------------------------------------

    def get_urls(self):
        return [
            path("sla/", self.admin_site.admin_view(self.sla_view), name="conversations_sla"),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        extra = {"can_see_sla_page": access.user_is_supervisor(request.user)}
        return super().changelist_view(request, extra_context={**extra, **(extra_context or {})})

    def change_view(self, request, object_id, form_url="", extra_context=None):
        if request.method == "POST":
            raise PermissionDenied  # read-only: changes go through the actions
        extra = dict(extra_context or {})
        obj = self.get_object(request, object_id)
        if obj is not None and self.has_view_permission(request, obj):
            extra.update(
                history=selectors.conversation_history_for_staff(
                    user=request.user,
                    conversation=obj,
                    ip=client_ip(request),
                    limit=HISTORY_LIMIT,
                ),
                history_limit=HISTORY_LIMIT,
                notes=list(obj.notes.select_related("author").order_by("created_at", "pk")),
                row_actions=[
                    (name, spec.title)
                    for name, spec in admin_actions.ACTIONS.items()
                    if self.has_supervise_permission(request)
                ],
                changelist_url=reverse("admin:conversations_conversation_changelist"),
                show_save=False,
                show_save_and_continue=False,
                show_save_and_add_another=False,
                show_delete=False,
            )
        return super().change_view(request, object_id, form_url, extra_context=extra)

    def sla_view(self, request):
        """Breaching and near-due conversations of the supervisor's teams (and those without
        a team), most urgent first, with per-team figures. Admins see every team."""
        if not access.user_is_supervisor(request.user):
            raise PermissionDenied
        now = request_now(request)
        if _sees_everything(request.user):
            teams = list(Team.objects.filter(is_active=True).order_by("name"))
            scope = Q()
        else:
            teams = list(request.user.teams.order_by("name"))
            scope = Q(team__in=teams) | Q(team__isnull=True)
        base = selectors.conversations_for_admin(request.user).filter(scope)
        rows = list(
            sla.breaching(
                base.select_related("customer", "team", "assigned_agent"),
                now,
                include_near_due=True,
            )[:SLA_PAGE_LIMIT]
        )
        summary = sla.sla_summary([*teams, None], now)
        names = {team.pk: team.name for team in teams}
        context = {
            **self.admin_site.each_context(request),
            "title": _("SLA das equipes"),
            "opts": self.model._meta,
            "now": now,
            "rows": [(row, sla.row_status(row)) for row in rows],
            "limit": SLA_PAGE_LIMIT,
            "summary": [
                (names.get(key, _("Sem equipe")), figures) for key, figures in summary.items()
            ],
            "changelist_url": reverse("admin:conversations_conversation_changelist"),
        }
        return TemplateResponse(request, "admin/conversations/conversation/sla.html", context)

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        return queryset.filter(
            Q(protocol__startswith=term) | customer_search_q(term, prefix="customer__")
        ), False


class _ShowsAConversation(AccessLoggedAdminMixin):
    """A page showing a row of a conversation (message, note, bot decision): the access log
    names the conversation's customer and team."""

    access_log_action = AccessLogEntry.Action.VIEW_CONVERSATION

    def access_log_customer_id(self, obj) -> int:
        return obj.conversation.customer_id

    def access_log_team_id(self, obj) -> int | None:
        return obj.conversation.team_id


@admin.register(Message)
class MessageAdmin(_ShowsAConversation, admin.ModelAdmin):
    list_display = ("pk", "conversation", "direction", "type", "status", "created_at")
    list_filter = ("direction", "type", "status", "sender_kind")
    search_fields = ("wamid", "conversation__protocol")
    list_select_related = ("conversation",)
    readonly_fields = [f.name for f in Message._meta.fields]

    def get_queryset(self, request):
        visible = selectors.conversations_for_admin(request.user)
        return super().get_queryset(request).filter(conversation__in=visible.values("pk"))

    def has_add_permission(self, request) -> bool:
        return False

    @admin.display(description=_("conversa"))
    def conversation_protocol(self, obj: Message) -> str:
        return obj.conversation.protocol


@admin.register(CannedResponse)
class CannedResponseAdmin(AuditHistoryMixin, admin.ModelAdmin):
    """Ready answers for the console's ``/`` menu; variables: {{nome}}, {{protocolo}},
    {{atendente}}, {{empresa}}. Supervisors keep their teams' ones (and see the global ones,
    which are the admins')."""

    list_display = ("shortcut", "title", "team", "is_active", "updated_at")
    list_filter = ("is_active", "team")
    search_fields = ("shortcut", "title", "body")
    list_select_related = ("team",)

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if not _team_scoped(request.user):
            return qs
        return qs.filter(Q(team__in=request.user.teams.all()) | Q(team__isnull=True))

    def _may_edit(self, request, obj) -> bool:
        return obj is None or obj.team_id is not None or not _team_scoped(request.user)

    def has_change_permission(self, request, obj=None) -> bool:
        return super().has_change_permission(request, obj) and self._may_edit(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return super().has_delete_permission(request, obj) and self._may_edit(request, obj)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "team" and _team_scoped(request.user):
            kwargs["queryset"] = request.user.teams.all()
            kwargs["required"] = True  # global answers are the admins'
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(ConversationNote)
class ConversationNoteAdmin(_ShowsAConversation, admin.ModelAdmin):
    list_display = ("conversation", "author", "created_at")
    search_fields = ("conversation__protocol",)
    list_select_related = ("conversation", "author")
    readonly_fields = ("conversation", "author", "text", "created_at")

    def get_queryset(self, request):
        visible = selectors.conversations_for_admin(request.user)
        return super().get_queryset(request).filter(conversation__in=visible.values("pk"))

    def has_add_permission(self, request) -> bool:
        return False

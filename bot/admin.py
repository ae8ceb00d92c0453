"""Supervisors' tools for the bot: knowledge base, escalation policy, and the decisions log."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from accounts.models import Team
from bot.models import (
    INTENT_CHOICES,
    BotDecision,
    BotPolicy,
    EscalationRule,
    IntentRoute,
    KnowledgeEntry,
)
from bot.services import bot_policy_invalidate
from compliance.admin_mixins import AccessLoggedAdminMixin
from compliance.models import AccessLogEntry
from conversations.selectors import conversations_for_admin
from ispsupport.admin_history import AuditHistoryMixin


class _InvalidatesPolicy:
    """Every change made here reaches the bot's next decision (drops its cached snapshot)."""

    def save_model(self, request, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        bot_policy_invalidate()

    def save_related(self, request, form, formsets, change) -> None:
        super().save_related(request, form, formsets, change)
        bot_policy_invalidate()

    def delete_model(self, request, obj) -> None:
        super().delete_model(request, obj)
        bot_policy_invalidate()

    def delete_queryset(self, request, queryset) -> None:
        super().delete_queryset(request, queryset)
        bot_policy_invalidate()


def _team_choices() -> list[tuple[str, str]]:
    teams = Team.objects.filter(is_active=True).order_by("name").values_list("slug", "name")
    return [("", _("— conforme a intenção / padrão —")), *teams]


class _TeamSlugField(forms.ChoiceField):
    """A team picked by name, stored by slug (the bot resolves it when it escalates)."""

    def __init__(self, **kwargs) -> None:
        kwargs.pop("max_length", None)
        kwargs.pop("allow_unicode", None)
        kwargs.pop("empty_value", None)
        super().__init__(choices=_team_choices, required=False, **kwargs)

    def valid_value(self, value: str) -> bool:
        return not value or super().valid_value(value)


class _KeepsStoredTeam:
    """A stored slug whose team is missing or inactive stays visible (and kept) in the form."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for name, field in self.fields.items():
            if not isinstance(field, _TeamSlugField):
                continue
            stored = getattr(self.instance, name, "")
            if stored and stored not in {value for value, _label in field.choices}:
                field.choices = [*field.choices, (stored, _("%s (equipe inexistente)") % stored)]


class KnowledgeEntryForm(forms.ModelForm):
    intents = forms.MultipleChoiceField(
        label=_("intenções"),
        choices=INTENT_CHOICES,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    keywords = forms.CharField(
        label=_("palavras-chave"),
        required=False,
        help_text=_("Separadas por vírgula. Escolhem esta resposta entre as da mesma intenção."),
    )

    class Meta:
        model = KnowledgeEntry
        fields = [
            "slug",
            "title",
            "intents",
            "keywords",
            "diagnosis",
            "answer",
            "hand_off",
            "position",
            "is_active",
        ]
        widgets = {"answer": forms.Textarea(attrs={"rows": 8, "maxlength": 900})}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["keywords"] = ", ".join(self.instance.keywords or [])

    def clean_keywords(self) -> list[str]:
        raw = self.cleaned_data.get("keywords") or ""
        return [word.strip() for word in raw.split(",") if word.strip()]


@admin.register(KnowledgeEntry)
class KnowledgeEntryAdmin(AuditHistoryMixin, _InvalidatesPolicy, admin.ModelAdmin):
    form = KnowledgeEntryForm
    list_display = [
        "title",
        "slug",
        "intent_list",
        "diagnosis",
        "hand_off",
        "is_active",
        "position",
    ]
    list_filter = ["is_active", "hand_off", "diagnosis"]
    list_editable = ["is_active", "position"]
    search_fields = ["title", "slug", "answer"]
    ordering = ["position", "slug"]

    @admin.display(description=_("intenções"))
    def intent_list(self, obj: KnowledgeEntry) -> str:
        labels = dict(INTENT_CHOICES)
        return ", ".join(str(labels.get(i, i)) for i in obj.intents or [])


class EscalationRuleForm(_KeepsStoredTeam, forms.ModelForm):
    team_slug = _TeamSlugField(label=_("equipe"))

    class Meta:
        model = EscalationRule
        fields = ["reason", "enabled", "team_slug", "priority"]


class IntentRouteForm(_KeepsStoredTeam, forms.ModelForm):
    team_slug = _TeamSlugField(label=_("equipe"))

    class Meta:
        model = IntentRoute
        fields = ["intent", "team_slug", "priority"]


class EscalationRuleInline(admin.TabularInline):
    model = EscalationRule
    form = EscalationRuleForm
    extra = 0
    can_delete = False
    max_num = len(EscalationRule.Reason.choices)


class IntentRouteInline(admin.TabularInline):
    model = IntentRoute
    form = IntentRouteForm
    extra = 0
    can_delete = False
    max_num = len(INTENT_CHOICES)


class BotPolicyForm(_KeepsStoredTeam, forms.ModelForm):
    default_team_slug = _TeamSlugField(label=_("equipe padrão"))

    class Meta:
        model = BotPolicy
        fields = [
            "negative_sentiment_threshold",
            "min_confidence",
            "max_bot_turns",
            "latency_budget_seconds",
            "allow_answer_adaptation",
            "default_team_slug",
        ]


@admin.register(BotPolicy)
class BotPolicyAdmin(AuditHistoryMixin, _InvalidatesPolicy, admin.ModelAdmin):
    """A single row: no adding a second one, no deleting it. Its history page includes the
    escalation rules and intent routes edited inline."""

    form = BotPolicyForm
    inlines = [EscalationRuleInline, IntentRouteInline]
    list_display = ["__str__", "min_confidence", "negative_sentiment_threshold", "max_bot_turns"]

    def audit_related(self, obj: BotPolicy) -> list:
        return [obj.rules.all(), obj.routes.all()]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return super().has_add_permission(request) and not BotPolicy.objects.exists()

    def has_delete_permission(self, request: HttpRequest, obj: BotPolicy | None = None) -> bool:
        return False


@admin.register(BotDecision)
class BotDecisionAdmin(AccessLoggedAdminMixin, admin.ModelAdmin):
    """Read-only log: what the bot decided and why (no customer text besides transcripts).

    Rows of the conversations the user's admin pages show (the console's rule); opening one
    (it may hold a voice note's transcription) writes the personal-data access log."""

    access_log_action = AccessLogEntry.Action.VIEW_CONVERSATION

    list_display = [
        "created_at",
        "conversation",
        "action",
        "rule",
        "intent",
        "confidence",
        "engine",
        "escalated",
        "latency_ms",
    ]
    list_filter = ["action", "engine", "escalated", "escalation_reason", "intent"]
    search_fields = ["conversation__protocol"]
    list_select_related = ["conversation"]
    date_hierarchy = "created_at"
    ordering = ["-created_at"]

    def get_queryset(self, request: HttpRequest):
        visible = conversations_for_admin(request.user)
        return super().get_queryset(request).filter(conversation__in=visible.values("pk"))

    def access_log_customer_id(self, obj: BotDecision) -> int:
        return obj.conversation.customer_id

    def access_log_team_id(self, obj: BotDecision) -> int | None:
        return obj.conversation.team_id

    def get_readonly_fields(self, request: HttpRequest, obj: BotDecision | None = None):
        return [field.name for field in BotDecision._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: BotDecision | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: BotDecision | None = None) -> bool:
        return False

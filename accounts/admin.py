from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from accounts import services
from accounts.models import (
    ApiToken,
    Role,
    SlaPriority,
    SlaTarget,
    Team,
    TeamHoliday,
    TeamOpeningHours,
    User,
    UserSession,
)
from ispsupport.admin_history import AuditHistoryMixin


def _is_admin(request) -> bool:
    return request.user.is_superuser or request.user.has_role(Role.ADMIN)


def _supervised_team_ids(request) -> list[int] | None:
    """The teams an agent or supervisor reaches here (their own); None: no scoping (admins,
    and roles whose permissions already keep them out)."""
    if _is_admin(request) or not request.user.has_role(Role.AGENT, Role.SUPERVISOR):
        return None
    return list(request.user.teams.values_list("pk", flat=True))


class _TeamScopedInline(admin.TabularInline):
    """Rows of a team's calendar or targets: supervisors reach them only through their own
    teams (the parent page is limited by ``TeamAdmin.get_queryset``)."""

    extra = 0


class OpeningHoursInline(_TeamScopedInline):
    model = TeamOpeningHours
    fields = ("weekday", "opens_at", "closes_at")
    verbose_name_plural = _("horários de atendimento (horário de Brasília; sem linhas: 24 horas)")


class TeamHolidayInline(_TeamScopedInline):
    model = TeamHoliday
    fields = ("day", "description")
    verbose_name_plural = _("feriados da equipe (além dos nacionais)")


class SlaTargetInline(_TeamScopedInline):
    model = SlaTarget
    fields = ("priority", "first_response_minutes", "resolution_minutes", "business_hours")
    max_num = len(SlaPriority.choices)


class MembershipInline(admin.TabularInline):
    """Who is in the team, with each person's capacity and presence (capacity is edited on the
    user; membership by admins, who may change users)."""

    model = User.teams.through
    fields = ("user", "capacity", "presence")
    readonly_fields = ("capacity", "presence")
    autocomplete_fields = ("user",)
    extra = 0
    verbose_name = _("atendente")
    verbose_name_plural = _("atendentes da equipe")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("user")

    @admin.display(description=_("capacidade (conversas simultâneas)"))
    def capacity(self, obj) -> int | str:
        return obj.user.max_concurrent_conversations if obj.user_id else "—"

    @admin.display(description=_("presença"))
    def presence(self, obj) -> str:
        return obj.user.get_presence_display() if obj.user_id else "—"


@admin.register(Team)
class TeamAdmin(AuditHistoryMixin, admin.ModelAdmin):
    """A team's page is where its supervisor runs it: members, calendar, SLA targets."""

    list_display = ("name", "slug", "is_active", "member_count", "hours_configured")
    list_filter = ("is_active",)
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    fields = ("name", "slug", "description", "is_active", "closed_on_national_holidays")
    inlines = [MembershipInline, OpeningHoursInline, TeamHolidayInline, SlaTargetInline]

    def get_queryset(self, request):
        qs = (
            super()
            .get_queryset(request)
            .annotate(
                n_members=Count("members", distinct=True),
                n_periods=Count("opening_hours", distinct=True),
            )
        )
        team_ids = _supervised_team_ids(request)
        return qs if team_ids is None else qs.filter(pk__in=team_ids)

    def audit_related(self, obj: Team) -> list:
        return [obj.opening_hours.all(), obj.holidays.all(), obj.sla_targets.all()]

    @admin.display(description=_("atendentes"), ordering="n_members")
    def member_count(self, obj: Team) -> int:
        return obj.n_members

    @admin.display(description=_("horário definido"), boolean=True)
    def hours_configured(self, obj: Team) -> bool:
        return obj.n_periods > 0


class SlaTargetForm(forms.ModelForm):
    class Meta:
        model = SlaTarget
        fields = (
            "team",
            "priority",
            "first_response_minutes",
            "resolution_minutes",
            "business_hours",
        )

    def clean(self):
        cleaned = super().clean()
        first, resolution = cleaned.get("first_response_minutes"), cleaned.get("resolution_minutes")
        if first and resolution and resolution < first:
            self.add_error(
                "resolution_minutes", _("A resolução não pode vencer antes da primeira resposta.")
            )
        return cleaned


SlaTargetInline.form = SlaTargetForm


@admin.register(SlaTarget)
class SlaTargetAdmin(AuditHistoryMixin, admin.ModelAdmin):
    """Targets per team and priority, and the defaults (no team) every other team falls back
    on. Supervisors change their teams' targets; the defaults are the admins'."""

    form = SlaTargetForm
    list_display = (
        "team_label",
        "priority",
        "first_response_minutes",
        "resolution_minutes",
        "business_hours",
    )
    list_filter = ("team", "priority", "business_hours")
    list_select_related = ("team",)
    ordering = ("team__name", "-priority")

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        team_ids = _supervised_team_ids(request)
        if team_ids is None:
            return qs
        return qs.filter(Q(team_id__in=team_ids) | Q(team__isnull=True))

    def _may_edit(self, request, obj) -> bool:
        return obj is None or obj.team_id is not None or _is_admin(request)

    def has_change_permission(self, request, obj=None) -> bool:
        return super().has_change_permission(request, obj) and self._may_edit(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return super().has_delete_permission(request, obj) and self._may_edit(request, obj)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "team":
            team_ids = _supervised_team_ids(request)
            if team_ids is not None:
                kwargs["queryset"] = Team.objects.filter(pk__in=team_ids)
                kwargs["required"] = True  # the defaults are the admins'
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @admin.display(description=_("equipe"), ordering="team__name")
    def team_label(self, obj: SlaTarget) -> str:
        return obj.team.name if obj.team_id else str(_("Padrão (todas as equipes)"))


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    list_display = ("username", "email", "role_names", "presence", "is_active")
    list_filter = ("groups", "presence", "is_active", "teams")
    search_fields = ("username", "email", "first_name", "last_name")
    ordering = ("username",)
    filter_horizontal = ("groups", "user_permissions", "teams")
    fieldsets = (
        *BaseUserAdmin.fieldsets,
        (_("Atendimento"), {"fields": ("teams", "max_concurrent_conversations", "presence")}),
    )
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("username", "email", "password1", "password2")}),
    )
    actions = ["end_all_sessions", "reset_two_factor", "unlock_login"]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("groups")

    def get_actions(self, request):
        actions = super().get_actions(request)
        if not _is_admin(request):
            for name in ("end_all_sessions", "reset_two_factor", "unlock_login"):
                actions.pop(name, None)
        return actions

    @admin.display(description=_("papéis"))
    def role_names(self, obj: User) -> str:
        return ", ".join(g.name for g in obj.groups.all())

    @admin.action(description=_("Encerrar todas as sessões (e WebSockets)"))
    def end_all_sessions(self, request, queryset):
        if not _is_admin(request):
            raise PermissionDenied
        total = sum(
            services.sessions_end_all_for_user(user=u, reason=UserSession.EndReason.ADMIN)
            for u in queryset
        )
        self.message_user(
            request,
            ngettext("%(n)d sessão encerrada.", "%(n)d sessões encerradas.", total) % {"n": total},
            messages.SUCCESS,
        )

    @admin.action(description=_("Redefinir verificação em duas etapas (2FA)"))
    def reset_two_factor(self, request, queryset):
        if not _is_admin(request):
            raise PermissionDenied
        for user in queryset:
            services.otp_devices_reset(user=user)
        self.message_user(
            request,
            _("2FA redefinido: no próximo login o usuário cadastra um novo aplicativo."),
            messages.SUCCESS,
        )

    @admin.action(description=_("Desbloquear login (tentativas erradas)"))
    def unlock_login(self, request, queryset):
        if not _is_admin(request):
            raise PermissionDenied
        from axes.utils import reset

        removed = sum(reset(username=u.get_username()) for u in queryset)
        self.message_user(
            request,
            _("Bloqueios removidos: %(n)d.") % {"n": removed},
            messages.SUCCESS,
        )


@admin.register(UserSession)
class UserSessionAdmin(admin.ModelAdmin):
    list_display = (
        "user",
        "ip_address",
        "short_user_agent",
        "created_at",
        "last_seen_at",
        "ended_at",
        "end_reason",
    )
    list_filter = ("end_reason", ("ended_at", admin.EmptyFieldListFilter))
    search_fields = ("user__username",)
    list_select_related = ("user",)
    exclude = ("session_key", "key_hash")
    readonly_fields = (
        "user",
        "ip_address",
        "user_agent",
        "created_at",
        "last_seen_at",
        "ended_at",
        "end_reason",
    )
    actions = ["end_sessions"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description=_("dispositivo"))
    def short_user_agent(self, obj: UserSession) -> str:
        return obj.user_agent[:60]

    @admin.action(description=_("Encerrar as sessões selecionadas"), permissions=["delete"])
    def end_sessions(self, request, queryset):
        count = services.sessions_end(records=list(queryset), reason=UserSession.EndReason.ADMIN)
        self.message_user(request, _("Sessões encerradas: %(n)d.") % {"n": count}, messages.SUCCESS)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("name", "user", "prefix", "scope", "expires_at", "last_used_at", "revoked_at")
    list_filter = ("scope", ("revoked_at", admin.EmptyFieldListFilter))
    search_fields = ("name", "prefix", "user__username")
    list_select_related = ("user",)
    exclude = ("key_hash",)
    readonly_fields = (
        "user",
        "name",
        "prefix",
        "scope",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
    )
    actions = ["revoke_tokens"]

    def has_add_permission(self, request):
        return False  # tokens are created by their owner, who sees the secret once

    def has_change_permission(self, request, obj=None):
        return False

    @admin.action(description=_("Revogar os tokens selecionados"), permissions=["delete"])
    def revoke_tokens(self, request, queryset):
        count = sum(services.api_token_revoke(token=t) for t in queryset)
        self.message_user(request, _("Tokens revogados: %(n)d.") % {"n": count}, messages.SUCCESS)

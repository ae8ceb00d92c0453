from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.core.exceptions import PermissionDenied
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from accounts import services
from accounts.models import ApiToken, Role, Team, User, UserSession


def _is_admin(request) -> bool:
    return request.user.is_superuser or request.user.has_role(Role.ADMIN)


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "is_active", "member_count")
    list_filter = ("is_active",)
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}

    @admin.display(description=_("atendentes"))
    def member_count(self, obj: Team) -> int:
        return obj.members.count()


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

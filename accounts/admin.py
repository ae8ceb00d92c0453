from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.utils.translation import gettext_lazy as _

from accounts.models import Team, User


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

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("groups")

    @admin.display(description=_("papéis"))
    def role_names(self, obj: User) -> str:
        return ", ".join(g.name for g in obj.groups.all())

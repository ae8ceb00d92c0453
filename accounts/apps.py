from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = _("Contas e equipes")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from auditlog.models import LogEntry as AuditLogEntry
        from django.contrib.admin.models import LogEntry as AdminLogEntry
        from django.contrib.auth.signals import user_logged_in, user_logged_out
        from django.core import checks
        from django.db.models.signals import pre_save

        from accounts import signals
        from ispsupport.crypto import check_keys
        from ispsupport.security import check_allowlists, hide_personal_object_repr

        user_logged_in.connect(signals.record_login, dispatch_uid="accounts.record_login")
        user_logged_out.connect(signals.record_logout, dispatch_uid="accounts.record_logout")
        checks.register(check_keys, checks.Tags.security)
        checks.register(check_allowlists, checks.Tags.security)
        post_migrate.connect(_resync_role_groups, dispatch_uid="accounts.resync_role_groups")
        for log_model in (AuditLogEntry, AdminLogEntry):
            pre_save.connect(
                hide_personal_object_repr,
                sender=log_model,
                dispatch_uid=f"accounts.hide_personal_object_repr.{log_model._meta.label}",
            )
        # Prometheus: log-ins, lockouts and sessions (signals; active sessions on scrape).
        from accounts import metrics

        metrics.connect()


def _resync_role_groups(sender, using="default", **kwargs) -> None:
    """Put the role groups back after a flush (``flush`` emits post_migrate, migrations don't).

    Transactional tests empty every table between tests; without this the groups created by
    the data migrations would be gone for the tests that follow. Runs once per migrate/flush,
    after the last app's permissions exist; a no-op when the groups are already complete.
    """
    from django.apps import apps
    from django.contrib.auth.models import Group, Permission

    from accounts.roles import ROLE_PERMISSIONS, sync_role_groups

    # post_migrate is sent only to apps with models: the last of those is the last sender
    # (an app without models, such as ``ispsupport``, may come after it in INSTALLED_APPS).
    with_models = [config for config in apps.get_app_configs() if config.models_module]
    if sender is not with_models[-1]:
        return
    if Group.objects.using(using).filter(name__in=ROLE_PERMISSIONS).count() == len(
        ROLE_PERMISSIONS
    ):
        return
    sync_role_groups(Group, Permission, strict=False)

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = _("Contas e equipes")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in, user_logged_out
        from django.core import checks

        from accounts import signals
        from ispsupport.crypto import check_keys
        from ispsupport.security import check_allowlists

        user_logged_in.connect(signals.record_login, dispatch_uid="accounts.record_login")
        user_logged_out.connect(signals.record_logout, dispatch_uid="accounts.record_logout")
        checks.register(check_keys, checks.Tags.security)
        checks.register(check_allowlists, checks.Tags.security)

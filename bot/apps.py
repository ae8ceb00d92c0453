from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BotConfig(AppConfig):
    name = "bot"
    verbose_name = _("Robô de triagem")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Personal data declared to the compliance registry (export, erasure, retention).
        from bot import privacy

        privacy.register_all()

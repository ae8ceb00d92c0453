from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ConversationsConfig(AppConfig):
    name = "conversations"
    verbose_name = _("Atendimento")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Personal data declared to the compliance registry (export, erasure, retention).
        from conversations import privacy

        privacy.register_all()
        # Prometheus series: receivers on the rows services write, gauges read on scrape.
        from conversations import metrics

        metrics.connect()

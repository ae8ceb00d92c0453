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
        # The dashboard (conversations) shows intents and escalation reasons by name.
        from bot.models import INTENT_CHOICES, EscalationRule
        from conversations import hooks

        hooks.register_labels("intent", dict(INTENT_CHOICES))
        hooks.register_labels(
            "escalation_reason",
            {f"bot:{value}": label for value, label in EscalationRule.Reason.choices},
        )
        # Prometheus: decisions from the rows they write; the breaker's state read on scrape.
        from bot import metrics

        metrics.connect()

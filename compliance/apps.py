from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ComplianceConfig(AppConfig):
    name = "compliance"
    verbose_name = _("LGPD e conformidade")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from compliance import privacy, registry

        privacy.register_all()
        # accounts may not import compliance (layers): its declaration is read from here.
        from accounts.privacy import STAFF_DATA

        registry.register(registry.provider_from_declaration(STAFF_DATA, order=10))

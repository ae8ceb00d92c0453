from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class IspConfig(AppConfig):
    name = "isp"
    verbose_name = _("Provedor: contratos e ERP")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.core import checks

        # Personal data declared to the compliance registry (export, erasure, retention).
        from isp import privacy
        from isp.checks import check_erp_settings

        privacy.register_all()
        checks.register(check_erp_settings)
        # The REST ERP's circuit breaker (isp.erp.rest.breaker) on /metrics.
        from ispsupport.metrics import register_breaker

        register_breaker("erp")
        # The supervisors' dashboard shows open outages and detection alerts.
        from conversations import hooks
        from isp.outages import outages_dashboard_tile

        hooks.register_dashboard_tile("outages", outages_dashboard_tile)

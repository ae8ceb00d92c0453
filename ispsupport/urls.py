"""Root URLconf: the public surface listed in ARCHITECTURE.md."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from ispsupport import health, metrics
from whatsapp import media_views

admin.site.site_header = "ispsupport"
admin.site.site_title = "ispsupport"

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    # Prometheus: allowed addresses (and the bearer token when set), never sessions.
    path("metrics", metrics.metrics_view, name="prometheus-django-metrics"),
    # One log-in page for everything (rate limits, lockout page, 2FA flow): the admin's own
    # log-in form redirects there.
    path(
        "admin/login/",
        RedirectView.as_view(pattern_name="accounts:login", query_string=True),
        name="admin-login-redirect",
    ),
    path("admin/", admin.site.urls),
    path("", include("accounts.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("whatsapp.urls")),
    path("media/<int:message_id>/", media_views.message_media, name="message-media"),
    # LGPD exports: the link's secret token is the credential; expires; downloads are logged.
    path("privacidade/", include("compliance.urls")),
    path("console/", include("conversations.urls")),
    path("api/v1/", include("conversations.api_urls")),
]

if settings.SIMULATOR_ENABLED:
    urlpatterns += [path("simulator/", include("whatsapp.simulator.urls"))]

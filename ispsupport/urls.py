"""Root URLconf: the public surface listed in ARCHITECTURE.md."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from ispsupport import health

admin.site.site_header = "ispsupport"
admin.site.site_title = "ispsupport"

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("", include("django_prometheus.urls")),  # /metrics
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("whatsapp.urls")),
]

if settings.SIMULATOR_ENABLED:
    urlpatterns += []

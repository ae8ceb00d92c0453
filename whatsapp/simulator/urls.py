"""``/simulator/``: Graph endpoints under ``graph/`` (the client's base URL) and the phone page."""

from django.urls import path, re_path

from whatsapp.simulator import views

app_name = "simulator"

_VERSION = r"(?P<version>v\d+\.\d+)"

urlpatterns = [
    path("", views.phone, name="phone"),
    path("api/send", views.api_send, name="api-send"),
    path("api/thread", views.api_thread, name="api-thread"),
    path("api/reset", views.api_reset, name="api-reset"),
    path("api/faults", views.api_faults, name="api-faults"),
    re_path(
        rf"^graph/{_VERSION}/(?P<phone_number_id>\d+)/messages$",
        views.graph_messages,
        name="graph-messages",
    ),
    re_path(
        rf"^graph/{_VERSION}/(?P<phone_number_id>\d+)/media$",
        views.graph_media_upload,
        name="graph-media-upload",
    ),
    path(
        "graph/media-download/<str:media_id>/",
        views.graph_media_download,
        name="media-download",
    ),
    re_path(
        rf"^graph/{_VERSION}/(?P<waba_id>\d+)/message_templates$",
        views.graph_templates,
        name="graph-templates",
    ),
    re_path(rf"^graph/{_VERSION}/(?P<media_id>\d+)$", views.graph_media_info, name="graph-media"),
]

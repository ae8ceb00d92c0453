from django.urls import path

from compliance import views

app_name = "compliance"

urlpatterns = [
    path("exportacoes/<str:token>/", views.export_download, name="export_download"),
]

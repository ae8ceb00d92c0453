"""``/console/``: the agents' console (pages, partials for live updates, actions)."""

from django.urls import path

from conversations import dashboard_views, views

app_name = "console"

urlpatterns = [
    path("login/", views.console_login, name="login"),
    path("logout/", views.ConsoleLogoutView.as_view(), name="logout"),
    path("", views.inbox, name="inbox"),
    path("c/<int:pk>/", views.conversation_detail, name="conversation"),
    path("c/<int:pk>/timeline/", views.timeline_partial, name="timeline"),
    path("c/<int:pk>/panel/", views.panel_partial, name="panel"),
    path("c/<int:pk>/sidebar/", views.sidebar_partial, name="sidebar"),
    path("c/<int:pk>/claim/", views.claim, name="claim"),
    path("c/<int:pk>/assign/", views.assign, name="assign"),
    path("c/<int:pk>/transfer/", views.transfer, name="transfer"),
    path("c/<int:pk>/reply/", views.reply, name="reply"),
    path("c/<int:pk>/template/", views.send_template, name="template"),
    path("c/<int:pk>/note/", views.add_note, name="note"),
    path("c/<int:pk>/priority/", views.set_priority, name="priority"),
    path("c/<int:pk>/close/", views.close, name="close"),
    path("partials/list/", views.list_partial, name="list"),
    path("partials/row/<int:pk>/", views.row_partial, name="row"),
    path("partials/message/<int:pk>/", views.message_partial, name="message"),
    path("partials/presence/", views.presence_partial, name="presence"),
    # supervisors and admins
    path("dashboard/", dashboard_views.dashboard_page, name="dashboard"),
    path("dashboard/live/", dashboard_views.dashboard_live, name="dashboard-live"),
    path("dashboard/snapshot/", dashboard_views.dashboard_snapshot, name="dashboard-snapshot"),
    path("dashboard/export.csv", dashboard_views.dashboard_export, name="dashboard-export"),
]

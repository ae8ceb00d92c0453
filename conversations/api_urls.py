"""``/api/v1/``: the console's operations for integrators, with the OpenAPI schema and docs."""

from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from conversations import apis

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("conversations/", apis.ConversationListApi.as_view(), name="api-conversations"),
    path("conversations/<int:pk>/", apis.ConversationDetailApi.as_view(), name="api-conversation"),
    path("conversations/<int:pk>/claim/", apis.ConversationClaimApi.as_view()),
    path("conversations/<int:pk>/assign/", apis.ConversationAssignApi.as_view()),
    path("conversations/<int:pk>/transfer/", apis.ConversationTransferApi.as_view()),
    path("conversations/<int:pk>/close/", apis.ConversationCloseApi.as_view()),
    path("conversations/<int:pk>/priority/", apis.ConversationPriorityApi.as_view()),
    path(
        "conversations/<int:pk>/messages/",
        apis.MessageListApi.as_view(),
        name="api-conversation-messages",
    ),
    path("conversations/<int:pk>/notes/", apis.NoteCreateApi.as_view()),
    path("customers/", apis.CustomerLookupApi.as_view(), name="api-customers"),
    path("customers/<int:pk>/", apis.CustomerDetailApi.as_view(), name="api-customer"),
    path("canned-responses/", apis.CannedResponseListApi.as_view(), name="api-canned"),
    path("me/presence/", apis.MyPresenceApi.as_view(), name="api-presence"),
    # Anything else under /api/v1/ is a JSON 404, not an HTML page.
    re_path(r"^.*$", apis.not_found),
]

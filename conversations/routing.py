"""The console's WebSocket route (wired into ``ispsupport.routing``)."""

from django.urls import path

from conversations.consumers import ConsoleConsumer

websocket_urlpatterns = [path("ws/console/", ConsoleConsumer.as_asgi())]

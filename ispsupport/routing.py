"""WebSocket routes. Each app that serves a socket contributes its patterns here."""

from conversations.routing import websocket_urlpatterns as _console_ws

websocket_urlpatterns: list = [*_console_ws]

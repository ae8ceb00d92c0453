"""WebSocket routes. Each app that serves a socket contributes its patterns here."""

websocket_urlpatterns: list = []

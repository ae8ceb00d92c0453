"""The console's one WebSocket (``/ws/console/``): authenticate, join groups, relay.

Client → server messages (JSON): ``{"type": "resume", "since": <seq>}`` (catch up on what was
missed), ``{"type": "heartbeat", "state": "online"|"away"}``,
``{"type": "typing", "conversation": <id>}`` and ``{"type": "subscribe", "topic": "dashboard"}``
(supervisors and admins; others get ``{"type": "error", "code": "forbidden"}``). Server →
client: ``{"type": "ready", ...}``, ``{"type": "event", "seq", "kind", "conversation_id",
"data", "at"}``, ``{"type": "catchup", "events": [...], "resync": bool}`` and
``{"type": "subscribed", "topic", "interval"}``. Events published together (one batch of
webhook events) reach the consumer as one ``console.events`` channel message and leave it as
one ``event`` frame each.

Each socket also joins its user's ``accounts.services.user_channel_group``: when sessions end
(the user, an admin, a password change, a 2FA reset), ``session.revoked`` names the ended
sessions' key hashes and the sockets opened by those sessions close with ``CLOSE_SESSION_ENDED``
(their reconnect finds no session and gets ``CLOSE_FORBIDDEN``).

Async, with every database touch in ``database_sync_to_async`` calls to selectors and services:
relaying an event is then a coroutine, not a hop through the one thread that sync consumers
share — with 200 agents on one process that hop was most of the fan-out time (bench/console.py).
"""

from __future__ import annotations

import json
import time
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from accounts.services import hash_key, user_channel_group
from conversations import access, events, metrics, selectors, services
from conversations.models import Conversation

CLOSE_FORBIDDEN = 4403
CLOSE_SESSION_ENDED = 4401
TYPING_MIN_INTERVAL = 2.0


def _admit(user: Any, session: Any) -> list[str] | None:
    """The groups to join, or None when the socket must be refused."""
    if not access.user_may_use_console(user) or not access.session_second_factor_ok(user, session):
        return None
    return events.user_groups(user)


def _connected(user: Any) -> int:
    services.agent_socket_connected(user=user)
    return selectors.live_event_latest_seq()


def _may_watch_dashboard(user: Any) -> bool:
    """Read the roles again: a socket outlives a role change made after it connected."""
    from accounts.models import User

    fresh = User.objects.filter(pk=user.pk).first()
    return fresh is not None and access.user_is_supervisor(fresh)


def _typing(user: Any, conversation_id: int) -> None:
    try:
        conversation = selectors.conversation_get_for_user(user=user, pk=conversation_id)
    except Conversation.DoesNotExist:
        return
    events.publish_typing(conversation=conversation, user=user)


class ConsoleConsumer(AsyncJsonWebsocketConsumer):
    user: Any = None
    joined: list[str]

    async def connect(self) -> None:
        user = self.scope.get("user")
        groups = await database_sync_to_async(_admit)(user, self.scope.get("session"))
        if groups is None:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.user = user
        self.user_id = str(user.pk)
        session_key = getattr(self.scope.get("session"), "session_key", None) or ""
        self.session_hash = hash_key(session_key) if session_key else ""
        self.joined = [*groups, user_channel_group(user.pk)]
        self._typing_at: dict[int, float] = {}
        for group in self.joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()
        metrics.CONSOLE_SOCKETS.inc()
        seq = await database_sync_to_async(_connected)(user)
        await self.send_json(
            {
                "type": "ready",
                "seq": seq,
                "heartbeat": settings.CONSOLE_HEARTBEAT_SECONDS,
                "user_id": self.user_id,
            }
        )

    async def disconnect(self, code: int) -> None:
        if self.user is None:
            return
        metrics.CONSOLE_SOCKETS.dec()
        for group in self.joined:
            await self.channel_layer.group_discard(group, self.channel_name)
        await database_sync_to_async(services.agent_socket_disconnected)(user=self.user)

    @classmethod
    async def decode_json(cls, text_data: str) -> Any:
        try:
            return json.loads(text_data)
        except ValueError:
            return {}

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if not isinstance(content, dict) or self.user is None:
            return
        kind = content.get("type")
        if kind == "resume":
            await self._resume(content.get("since"))
        elif kind == "heartbeat":
            await database_sync_to_async(services.agent_heartbeat)(
                user=self.user, state=str(content.get("state", ""))
            )
        elif kind == "typing":
            await self._typing(content.get("conversation"))
        elif kind == "subscribe":
            await self._subscribe(content.get("topic"))

    async def _subscribe(self, topic: Any) -> None:
        if topic != "dashboard":
            await self.send_json({"type": "error", "code": "unknown_topic"})
            return
        if not await database_sync_to_async(_may_watch_dashboard)(self.user):
            await self.send_json({"type": "error", "code": "forbidden", "topic": topic})
            return
        if events.GROUP_DASHBOARD not in self.joined:
            await self.channel_layer.group_add(events.GROUP_DASHBOARD, self.channel_name)
            self.joined.append(events.GROUP_DASHBOARD)
        await self.send_json(
            {
                "type": "subscribed",
                "topic": topic,
                "interval": settings.DASHBOARD_PUSH_INTERVAL_SECONDS,
            }
        )

    async def _resume(self, since: Any) -> None:
        try:
            since = max(int(since), 0)
        except (TypeError, ValueError):
            since = 0
        catch_up = await database_sync_to_async(selectors.live_events_since)(
            user=self.user, since=since
        )
        await self.send_json(
            {"type": "catchup", "events": catch_up.events, "resync": catch_up.resync}
        )

    async def _typing(self, conversation_id: Any) -> None:
        try:
            conversation_id = int(conversation_id)
        except (TypeError, ValueError):
            return
        now = time.monotonic()
        if now - self._typing_at.get(conversation_id, 0.0) < TYPING_MIN_INTERVAL:
            return
        self._typing_at[conversation_id] = now
        await database_sync_to_async(_typing)(self.user, conversation_id)

    async def session_revoked(self, message: dict[str, Any]) -> None:
        """Sessions of this user ended: close if this socket was opened by one of them."""
        if self.session_hash and self.session_hash in (message.get("session_key_hashes") or ()):
            await self.close(code=CLOSE_SESSION_ENDED)

    async def console_event(self, message: dict[str, Any]) -> None:
        event = message["event"]
        if event.get("kind") == "typing" and event["data"].get("user_id") == self.user_id:
            return
        await self.send_json({"type": "event", **event})

    async def console_events(self, message: dict[str, Any]) -> None:
        """Several events for one group in one channel-layer message (a batch committed
        together): relayed one by one, in order, exactly as if sent apart."""
        for event in message["events"]:
            await self.console_event({"event": event})

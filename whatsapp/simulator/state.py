"""The simulator's memory: recorded Graph requests, scripted answers, phone threads, media.

Everything lives in this process (thread-safe behind one lock) and nothing touches the database,
so the async Graph views never need Django's sync thread. Tests drive it through ``SIM``:

    SIM.reset()
    SIM.push_error(131047)            # the next send answers Meta's 131047
    SIM.push_http(500)                # … or a bare HTTP 500
    SIM.push_timeout(2.0)             # … or answers only after 2 s (the client times out)
    SIM.push_async_failure(131026)    # accept the next send, then post a "failed" status
    SIM.push_hold(5.0)                # hold the next send 5 s before handling it (a slow Meta)
    SIM.add_window(Scripted("http", "messages", 500), seconds=10)  # every send, for 10 s
    SIM.sent()                        # bodies of the sends Meta accepted
    SIM.uploads()                     # the media uploads Meta accepted
    SIM.requests                      # every request, with its Authorization header

Webhooks (the customer's messages, statuses of our sends) are posted signed from one
background thread, after the HTTP response that caused them (see ``WebhookPoster``).

Another process (the local fleet's Graph simulator, a fault test) scripts the same answers over
HTTP: ``/simulator/api/faults`` (``whatsapp.simulator.views.api_faults``).
"""

from __future__ import annotations

import copy
import hashlib
import heapq
import itertools
import json
import logging
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import requests
from django.conf import settings

from whatsapp.simulator import meta
from whatsapp.simulator.catalogue import DEMO_TEMPLATES

logger = logging.getLogger(__name__)

MAX_THREAD_MESSAGES = 200
MAX_RECORDED = 5000


@dataclass
class RecordedRequest:
    method: str
    path: str
    authorization: str
    body: Any
    query: dict[str, str]
    at: float = field(default_factory=time.time)
    status: int = 0  # the HTTP status the simulator answered

    @property
    def accepted(self) -> bool:
        return self.status == 200


@dataclass
class Scripted:
    """One scripted answer.

    ``error``: Meta's error body for ``code`` (HTTP ``status`` when given, else Meta's for the
    code); ``http``: a bare HTTP ``status`` (``body`` as JSON when given); ``timeout``: answer
    only after ``seconds`` (the client has given up); ``hold``: wait ``seconds``, then handle
    the request normally (a slow Meta; a client that goes away meanwhile cancels it, so a held
    send that nobody waited for is never accepted). ``retry_after`` adds a Retry-After header.
    """

    kind: str  # error | http | timeout | hold
    endpoint: str  # messages | media | download | upload | templates | any
    status: int = 200
    code: int | None = None
    title: str | None = None
    details: str | None = None
    seconds: float = 0.0
    body: Any = None
    retry_after: float | None = None

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "endpoint": self.endpoint,
            "status": self.status,
            "code": self.code,
            "seconds": self.seconds,
            "retry_after": self.retry_after,
        }


@dataclass
class Window:
    """A scripted answer for every matching request until ``until`` (``time.monotonic()``)."""

    answer: Scripted
    until: float
    hits: int = 0


@dataclass
class PhoneMessage:
    seq: int
    wamid: str
    direction: str  # "in": the customer wrote it; "out": the business sent it
    kind: str
    phone_number_id: str
    view: dict[str, Any]
    status: str
    at: float = field(default_factory=time.time)
    error_code: int | None = None


@dataclass
class MediaItem:
    data: bytes
    mime_type: str
    filename: str = ""

    @property
    def sha256_hex(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass
class WebhookResult:
    label: str
    status: int | None
    error: str = ""
    at: float = field(default_factory=time.time)


class SimulatorState:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.poster = WebhookPoster(self)
        self.reset()

    def reset(self) -> None:
        """Forget everything (tests call this first); pending webhooks are dropped."""
        with self.lock:
            self.requests: list[RecordedRequest] = []
            self.script: deque[Scripted] = deque()
            self.windows: list[Window] = []
            # Requests being held right now (``hold``), and how many ever were.
            self.held = 0
            self.held_total = 0
            self.async_failures: deque[int] = deque()
            self.next_wamids: deque[str] = deque()
            self.threads: dict[str, list[PhoneMessage]] = {}
            self.names: dict[str, str] = {}
            self.media: dict[str, MediaItem] = {}
            self.webhook_log: deque[WebhookResult] = deque(maxlen=500)
            self.version = 0
            self._seq = itertools.count(1)
            # Seconds after an accepted send until Meta's "sent" and "delivered" webhooks.
            self.status_delays: tuple[float, float] = (0.3, 1.0)
            # When True every accepted send is also "read" at once (no phone page needed).
            self.auto_read = False
            self.webhooks_enabled = True
            # The business account's templates (GET /{waba-id}/message_templates).
            self.templates: list[dict[str, Any]] = copy.deepcopy(DEMO_TEMPLATES)
        self.poster.clear()

    # --- recording and scripting ------------------------------------------------------------

    def record(self, request: RecordedRequest) -> None:
        with self.lock:
            self.requests.append(request)
            if len(self.requests) > MAX_RECORDED:
                del self.requests[: len(self.requests) - MAX_RECORDED]

    def push_error(
        self,
        code: int,
        *,
        times: int = 1,
        title: str | None = None,
        details: str | None = None,
        endpoint: str = "messages",
    ) -> None:
        status, _body = meta.error_body(code)
        with self.lock:
            for _ in range(times):
                self.script.append(
                    Scripted("error", endpoint, status, code, title=title, details=details)
                )

    def push_http(
        self, status: int, *, body: Any = None, times: int = 1, endpoint: str = "messages"
    ) -> None:
        with self.lock:
            for _ in range(times):
                self.script.append(Scripted("http", endpoint, status, body=body))

    def push_timeout(self, seconds: float, *, times: int = 1, endpoint: str = "messages") -> None:
        with self.lock:
            for _ in range(times):
                self.script.append(Scripted("timeout", endpoint, seconds=seconds))

    def push_hold(self, seconds: float, *, times: int = 1, endpoint: str = "messages") -> None:
        with self.lock:
            for _ in range(times):
                self.script.append(Scripted("hold", endpoint, seconds=seconds))

    def add_window(self, answer: Scripted, *, seconds: float) -> None:
        """Answer every request to ``answer.endpoint`` with ``answer`` for the next ``seconds``
        (after anything queued with ``push_*``; a later window shadows an earlier one)."""
        with self.lock:
            self.windows.append(Window(answer, time.monotonic() + seconds))

    def clear_faults(self) -> None:
        """Forget every scripted answer and window (recorded requests are kept)."""
        with self.lock:
            self.script.clear()
            self.windows.clear()
            self.async_failures.clear()

    def faults_state(self) -> dict[str, Any]:
        """What is scripted now and what the simulator answered (for ``/simulator/api/faults``)."""
        now = time.monotonic()
        with self.lock:
            answered: dict[str, dict[str, int]] = {}
            for r in self.requests:
                endpoint = _endpoint_of(r.path)
                counts = answered.setdefault(endpoint, {})
                counts[str(r.status)] = counts.get(str(r.status), 0) + 1
            return {
                "queued": [item.describe() for item in self.script],
                "windows": [
                    {**w.answer.describe(), "remaining_s": round(w.until - now, 3), "hits": w.hits}
                    for w in self.windows
                    if w.until > now
                ],
                "held": self.held,
                "held_total": self.held_total,
                # HTTP status → count per endpoint; "0": not answered (cancelled, or still held)
                "answered": answered,
            }

    def push_wamid(self, wamid: str) -> None:
        """The next accepted send gets this wamid (tests of statuses that outrun the send)."""
        with self.lock:
            self.next_wamids.append(wamid)

    def take_wamid(self) -> str:
        with self.lock:
            return self.next_wamids.popleft() if self.next_wamids else meta.new_wamid()

    def push_async_failure(self, code: int, *, times: int = 1) -> None:
        with self.lock:
            self.async_failures.extend([code] * times)

    def take_scripted(self, endpoint: str) -> Scripted | None:
        """The next queued answer for ``endpoint``, else the answer of an open window."""
        with self.lock:
            for index, item in enumerate(self.script):
                if item.endpoint in (endpoint, "any"):
                    del self.script[index]
                    return item
            now = time.monotonic()
            self.windows = [w for w in self.windows if w.until > now]
            for window in reversed(self.windows):  # the latest window wins
                if window.answer.endpoint in (endpoint, "any"):
                    window.hits += 1
                    return window.answer
        return None

    def sent(self) -> list[dict[str, Any]]:
        """Bodies of the message sends Meta accepted (read receipts excluded), in order."""
        with self.lock:
            return [
                r.body
                for r in self.requests
                if r.method == "POST"
                and r.path.endswith("/messages")
                and isinstance(r.body, dict)
                and r.body.get("status") != "read"
                and r.accepted
            ]

    def uploads(self) -> list[RecordedRequest]:
        """The media uploads Meta accepted (``body["file"]`` has the name, size and MIME type)."""
        with self.lock:
            return [
                r
                for r in self.requests
                if r.method == "POST" and r.path.endswith("/media") and r.accepted
            ]

    # --- phone threads ----------------------------------------------------------------------

    def _add(self, key: str, message: PhoneMessage) -> None:
        thread = self.threads.setdefault(key, [])
        thread.append(message)
        if len(thread) > MAX_THREAD_MESSAGES:
            del thread[: len(thread) - MAX_THREAD_MESSAGES]
        self.version += 1

    def add_outbound(
        self, key: str, *, wamid: str, phone_number_id: str, body: dict[str, Any]
    ) -> PhoneMessage:
        with self.lock:
            message = PhoneMessage(
                seq=next(self._seq),
                wamid=wamid,
                direction="out",
                kind=body.get("type", "text"),
                phone_number_id=phone_number_id,
                view=outbound_view(body),
                status="accepted",
            )
            self._add(key, message)
            return message

    def add_inbound(
        self, key: str, *, name: str, wamid: str, phone_number_id: str, view: dict[str, Any]
    ) -> PhoneMessage:
        with self.lock:
            self.names[key] = name
            message = PhoneMessage(
                seq=next(self._seq),
                wamid=wamid,
                direction="in",
                kind=view.get("kind", "text"),
                phone_number_id=phone_number_id,
                view=view,
                status="pending",
            )
            self._add(key, message)
            return message

    def find(self, wamid: str) -> tuple[str, PhoneMessage] | None:
        with self.lock:
            for key, thread in self.threads.items():
                for message in thread:
                    if message.wamid == wamid:
                        return key, message
        return None

    def set_status(self, wamid: str, status: str, error_code: int | None = None) -> None:
        rank = {"pending": 0, "accepted": 0, "sent": 1, "delivered": 2, "read": 3, "failed": 9}
        with self.lock:
            found = self.find(wamid)
            if found is None:
                return
            message = found[1]
            if rank.get(status, 0) > rank.get(message.status, 0):
                message.status = status
                message.error_code = error_code
                self.version += 1

    def mark_business_read(self, wamid: str) -> None:
        """The business marked an inbound message read: it and earlier ones get blue ticks."""
        with self.lock:
            found = self.find(wamid)
            if found is None:
                return
            for message in self.threads[found[0]]:
                if message.direction == "in" and message.status != "read":
                    message.status = "read"
                    self.version += 1
                if message.wamid == wamid:
                    break

    def unread_outbound(self, key: str) -> list[PhoneMessage]:
        """Outbound messages the customer has now seen (the page showed them): to be "read"."""
        with self.lock:
            seen = [
                m
                for m in self.threads.get(key, [])
                if m.direction == "out" and m.status in ("sent", "delivered")
            ]
            return seen

    def thread_snapshot(self, key: str) -> dict[str, Any]:
        with self.lock:
            return {
                "version": self.version,
                "name": self.names.get(key, ""),
                "messages": [
                    {
                        "seq": m.seq,
                        "wamid": m.wamid,
                        "dir": m.direction,
                        "kind": m.kind,
                        "status": m.status,
                        "error_code": m.error_code,
                        "time": time.strftime("%H:%M", time.localtime(m.at)),
                        **m.view,
                    }
                    for m in self.threads.get(key, [])
                ],
            }

    # --- media ------------------------------------------------------------------------------

    def add_media(self, data: bytes, mime_type: str, filename: str = "") -> str:
        media_id = str(10**15 + secrets.randbelow(9 * 10**15))
        with self.lock:
            self.media[media_id] = MediaItem(data=data, mime_type=mime_type, filename=filename)
        return media_id

    # --- webhooks ---------------------------------------------------------------------------

    def post_webhook(self, label: str, payload: dict[str, Any], *, delay: float = 0.0) -> None:
        """Post a signed webhook later (an empty ``SIMULATOR_WEBHOOK_URL`` posts nothing)."""
        if self.webhooks_enabled and settings.SIMULATOR_WEBHOOK_URL:
            self.poster.schedule(label, payload, delay=delay)

    def schedule_statuses(
        self, *, key: str, wamid: str, phone_number_id: str, recipient: str
    ) -> None:
        """After an accepted send: sent and delivered (or failed, when scripted), maybe read."""
        with self.lock:
            failure = self.async_failures.popleft() if self.async_failures else None
            first, second = self.status_delays
            auto_read = self.auto_read
        if failure is not None:
            steps: list[tuple[str, float]] = [("failed", first)]
        else:
            steps = [("sent", first), ("delivered", second)]
            if auto_read:
                steps.append(("read", second))
        for status, delay in steps:
            label = f"status:{status}:{wamid}"
            self.poster.after_post(
                label,
                lambda s=status: self.set_status(wamid, s, failure if s == "failed" else None),
            )
            self.post_webhook(
                label,
                meta.status_envelope(
                    phone_number_id=phone_number_id,
                    wamid=wamid,
                    status=status,
                    recipient=recipient,
                    error_code=failure,
                ),
                delay=delay,
            )

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Block until every scheduled webhook was posted (tests); False on timeout."""
        return self.poster.wait_idle(timeout)


class WebhookPoster:
    """One daemon thread posting signed webhooks in due order, retrying like Meta (bounded).

    The HTTP request that caused a webhook has always been answered before the post starts,
    so our webhook view (sync) may call back into the simulator (async) without a deadlock.
    """

    RETRY_DELAYS = (1.0, 5.0, 15.0)

    def __init__(self, state: SimulatorState) -> None:
        self.state = state
        self._heap: list[tuple[float, int, str, bytes, int]] = []
        self._cond = threading.Condition()
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None
        self._busy = False
        self._callbacks: dict[str, Any] = {}
        self._session = requests.Session()

    def clear(self) -> None:
        with self._cond:
            self._heap.clear()
            self._callbacks.clear()
            self._cond.notify_all()

    def after_post(self, label: str, callback: Any) -> None:
        with self._cond:
            self._callbacks[label] = callback

    def schedule(self, label: str, payload: dict[str, Any], *, delay: float = 0.0) -> None:
        body = json.dumps(payload).encode()  # ASCII-escaped like Meta's; signed as is
        self._push(time.monotonic() + delay, label, body, 0)

    def _push(self, due: float, label: str, body: bytes, attempt: int) -> None:
        with self._cond:
            heapq.heappush(self._heap, (due, next(self._seq), label, body, attempt))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="simulator-webhooks", daemon=True
                )
                self._thread.start()
            self._cond.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._heap or self._busy:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(min(remaining, 0.05))
        return True

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap:
                    self._busy = False
                    self._cond.notify_all()
                    self._cond.wait()
                due, _, label, body, attempt = self._heap[0]
                wait = due - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                heapq.heappop(self._heap)
                self._busy = True
            self._post(label, body, attempt)

    def _post(self, label: str, body: bytes, attempt: int) -> None:
        from whatsapp.inbound import sign

        url = settings.SIMULATOR_WEBHOOK_URL
        status: int | None = None
        error = ""
        try:
            response = self._session.post(
                url,
                data=body,
                headers={"Content-Type": "application/json", "X-Hub-Signature-256": sign(body)},
                timeout=30,
            )
            status = response.status_code
            response.close()
        except requests.RequestException as exc:
            error = type(exc).__name__
        self.state.webhook_log.append(WebhookResult(label, status, error))
        if status == 200:
            with self._cond:
                callback = self._callbacks.pop(label, None)
            if callback is not None:
                try:
                    callback()
                except Exception:
                    logger.exception("simulator: webhook callback failed")
        elif attempt < len(self.RETRY_DELAYS):
            logger.info("simulator: webhook not accepted, retrying", extra={"status": status})
            self._push(time.monotonic() + self.RETRY_DELAYS[attempt], label, body, attempt + 1)
        else:
            logger.warning("simulator: webhook dropped after retries", extra={"status": status})


def _endpoint_of(path: str) -> str:
    """The scripting endpoint name of a recorded request's path."""
    if path.endswith("/messages"):
        return "messages"
    if path.endswith("/media"):
        return "upload"
    if path.endswith("/message_templates"):
        return "templates"
    return "media"


def outbound_view(body: dict[str, Any]) -> dict[str, Any]:
    """How the customer's phone shows a message the business sent (for the page)."""
    kind = body.get("type", "text")
    obj = body.get(kind) or {}
    view: dict[str, Any] = {"text": ""}
    if kind == "text":
        view["text"] = obj.get("body", "")
    elif kind == "interactive":
        view["text"] = (obj.get("body") or {}).get("text", "")
        header = obj.get("header") or {}
        view["header"] = header.get("text", "") if header.get("type") == "text" else ""
        view["footer"] = (obj.get("footer") or {}).get("text", "")
        action = obj.get("action") or {}
        if str(obj.get("type", "")).lower() == "button":
            view["buttons"] = [
                {"id": b["reply"]["id"], "title": b["reply"]["title"]}
                for b in action.get("buttons", [])
                if isinstance(b, dict) and isinstance(b.get("reply"), dict)
            ]
        elif str(obj.get("type", "")).lower() == "list":
            view["list"] = {"button": action.get("button", ""), "sections": action.get("sections")}
    elif kind == "template":
        params = [
            p.get("text", "")
            for c in obj.get("components") or []
            if c.get("type") == "body"
            for p in c.get("parameters") or []
            if p.get("type") == "text"
        ]
        view["template"] = obj.get("name", "")
        view["text"] = " · ".join(params)
        view["buttons"] = [
            {
                "payload": ((c.get("parameters") or [{}])[0]).get("payload", ""),
                "title": ((c.get("parameters") or [{}])[0]).get("payload", "")
                or f"Opção {int(c.get('index', 0)) + 1}",
            }
            for c in obj.get("components") or []
            if c.get("type") == "button" and c.get("sub_type") == "quick_reply"
        ]
    elif kind in meta.MEDIA_TYPES:
        view["text"] = obj.get("caption", "")
        view["media"] = {"kind": kind, "link": obj.get("link", ""), "filename": obj.get("filename")}
    else:
        view["text"] = ""
    if isinstance(body.get("context"), dict):
        view["reply_to"] = body["context"].get("message_id", "")
    return view


SIM = SimulatorState()

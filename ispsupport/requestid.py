"""One request id that follows a customer message from the webhook to the agent's screen.

The id lives in a context variable, so every log line written while it is set carries it
(``RequestIdFilter`` adds ``request_id`` to each record) without passing it around:

* HTTP: ``RequestIdMiddleware`` takes a well-formed ``X-Request-ID`` from the client or the
  balancer, or makes one, and echoes it on the response. The webhook's lean WSGI path wraps
  its view in the same middleware.
* Celery: publishing a task copies the current id into the message headers
  (``ispsupport.celery_hooks``); the worker sets it again before the task runs. An eager task
  (no broker) runs inline and simply keeps the caller's id.
* Batches: a task that handles events from many requests (the webhook drain) sets each event's
  stored id while applying it (``context``), and work deferred to after the commit keeps the id
  it was planned under (``bind``).
* Live events: ``conversations.events`` copies the id into the event sent to the console's
  WebSocket, so the browser's event can be matched to the log lines.

An id is 1-64 characters of letters, digits, ``.``, ``_`` and ``-``: never personal data.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import wraps
from typing import Any, ParamSpec, TypeVar

from django.http import HttpRequest, HttpResponse

HEADER = "X-Request-ID"
META_KEY = "HTTP_X_REQUEST_ID"
_VALID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

_request_id: ContextVar[str] = ContextVar("ispsupport_request_id", default="")
_task_name: ContextVar[str] = ContextVar("ispsupport_task_name", default="")

T = TypeVar("T")
P = ParamSpec("P")


def new() -> str:
    """A fresh id (32 hex characters)."""
    return uuid.uuid4().hex


def clean(value: Any) -> str:
    """``value`` when it is a well-formed id, else "" (never trust a header blindly)."""
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if isinstance(value, str) and _VALID.match(value.strip()):
        return value.strip()
    return ""


def get() -> str:
    """The current id, or "" outside any request or task."""
    return _request_id.get()


def task_name() -> str:
    return _task_name.get()


@contextmanager
def context(request_id: str, *, task: str | None = None) -> Iterator[str]:
    """Run the block under ``request_id`` (a new id when empty); restore the previous after."""
    rid = clean(request_id) or new()
    token = _request_id.set(rid)
    task_token = _task_name.set(task) if task is not None else None
    try:
        yield rid
    finally:
        _request_id.reset(token)
        if task_token is not None:
            _task_name.reset(task_token)


def activate(request_id: str, *, task: str = "") -> tuple[Any, Any]:
    """Set the id (and task name) without a ``with`` block; ``deactivate`` the tokens after."""
    return _request_id.set(clean(request_id) or new()), _task_name.set(task)


def deactivate(tokens: tuple[Any, Any]) -> None:
    rid_token, task_token = tokens
    try:
        _request_id.reset(rid_token)
        _task_name.reset(task_token)
    except ValueError:
        # Reset from another context (a task ended on another thread): just clear.
        _request_id.set("")
        _task_name.set("")


def bind(fn: Callable[..., T]) -> Callable[..., T]:
    """``fn`` to run later (after commit, on a timer) under the id current now."""
    rid = get()
    if not rid:
        return fn

    @wraps(fn)
    def run(*args: Any, **kwargs: Any) -> T:
        with context(rid):
            return fn(*args, **kwargs)

    return run


def using(
    get_id: Callable[..., str],
) -> Callable[[Callable[P, T]], Callable[P, T]]:
    """Decorator: run the function under the id ``get_id(*args, **kwargs)`` names (the current
    one when it names none), e.g. each stored webhook event under its own request's id."""

    def decorate(fn: Callable[P, T]) -> Callable[P, T]:
        @wraps(fn)
        def run(*args: P.args, **kwargs: P.kwargs) -> T:
            with context(clean(get_id(*args, **kwargs)) or get()):
                return fn(*args, **kwargs)

        return run

    return decorate


class RequestIdMiddleware:
    """Sets the request id for the request's duration and answers it in ``X-Request-ID``."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with context(clean(request.META.get(META_KEY))) as rid:
            request.request_id = rid  # type: ignore[attr-defined]
            response = self.get_response(request)
        response[HEADER] = rid
        return response


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` (and ``task`` inside a Celery task) to every record it sees.

    Installed on the root handler next to the personal-data mask; records that already carry
    a ``request_id`` (passed in ``extra``) keep it.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", ""):
            record.request_id = get() or "-"
        task = task_name()
        if task and not getattr(record, "task", ""):
            record.task = task
        return True

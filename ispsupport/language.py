"""The language of what customers receive.

Staff pages follow the browser (LocaleMiddleware: pt-BR or English). What goes to a customer on
WhatsApp, by e-mail or on paper — bot replies, protocol and privacy messages, data-subject
answers — is always pt-BR (``settings.LANGUAGE_CODE``), whoever triggered it: a DPO reading
the admin in English still answers the customer in Portuguese. Text built for a customer is
rendered inside ``customer_language()`` (or a function decorated with
``in_customer_language``), and every Celery task runs in it (``ispsupport.celery_hooks``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from django.conf import settings
from django.utils import translation

P = ParamSpec("P")
R = TypeVar("R")


def customer_language() -> translation.override:
    """Context manager: gettext renders pt-BR inside, the caller's language after."""
    return translation.override(settings.LANGUAGE_CODE)


def in_customer_language(func: Callable[P, R]) -> Callable[P, R]:
    """Decorator for a function whose result a customer reads."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with customer_language():
            return func(*args, **kwargs)

    return wrapper

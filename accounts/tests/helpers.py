"""Test helpers for logged-in clients."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

from django_otp import DEVICE_ID_SESSION_KEY

from accounts.devices import AuthenticatorDevice


def verified_device(user: Any) -> AuthenticatorDevice:
    """The user's confirmed authenticator app (created when they have none)."""
    device = AuthenticatorDevice.objects.filter(user=user, confirmed=True).first()
    if device is None:
        device = AuthenticatorDevice.objects.create(user=user, name="Teste", confirmed=True)
    return device


def login_verified(client: Any, user: Any) -> AuthenticatorDevice:
    """Log ``client`` in as ``user`` with a verified second factor, as after a real log-in and
    TOTP check (``force_login`` alone leaves the session unverified, so 2FA-required roles are
    sent to ``/accounts/2fa/``). Uses the user's confirmed authenticator, creating one if needed.
    """
    device = verified_device(user)
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return device


class _FormScraper(HTMLParser):
    """Collects what a browser would submit from the page's main form."""

    def __init__(self, form_id: str) -> None:
        super().__init__()
        self.form_id = form_id
        self.inside = False
        self.data: list[tuple[str, str]] = []
        self._select: str | None = None
        self._first: str | None = None
        self._selected: str | None = None
        self._textarea: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs_list: list[tuple[str, str | None]]) -> None:
        attrs = {k: v or "" for k, v in attrs_list}
        if tag == "form":
            self.inside = attrs.get("id") == self.form_id
            return
        if not self.inside or "disabled" in attrs:
            return
        name = attrs.get("name")
        if tag == "input" and name:
            kind = attrs.get("type", "text")
            if kind in ("submit", "button", "file", "image"):
                return
            if kind in ("checkbox", "radio") and "checked" not in attrs:
                return
            self.data.append((name, attrs.get("value", "on" if kind == "checkbox" else "")))
        elif tag == "select" and name:
            self._select, self._first, self._selected = name, None, None
        elif tag == "option" and self._select is not None:
            value = attrs.get("value", "")
            if self._first is None:
                self._first = value
            if "selected" in attrs:
                self._selected = value
        elif tag == "textarea" and name:
            self._textarea, self._text = name, []

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False
        elif tag == "select" and self._select is not None:
            # Without a selected option a browser submits the first one.
            chosen = self._selected if self._selected is not None else self._first
            self.data.append((self._select, chosen or ""))
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            self.data.append((self._textarea, "".join(self._text).lstrip("\n")))
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._text.append(data)


def form_data(html: str, form_id: str) -> dict[str, Any]:
    """The values a browser would post from the form ``form_id`` of ``html`` (inputs, checked
    boxes, selected options, textareas), for tests that submit an admin page as people do."""
    scraper = _FormScraper(form_id)
    scraper.feed(html)
    data: dict[str, Any] = {}
    for name, value in scraper.data:
        if name in data:
            existing = data[name]
            data[name] = [*existing, value] if isinstance(existing, list) else [existing, value]
        else:
            data[name] = value
    return data

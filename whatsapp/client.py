"""The one chokepoint for Meta's Graph API (WhatsApp Cloud API).

Requests go to ``{WHATSAPP_API_BASE_URL}/{WHATSAPP_API_VERSION}/…`` with
``Authorization: Bearer {WHATSAPP_ACCESS_TOKEN}``; in development the base URL is the built-in
simulator (``/simulator/graph``), in production ``https://graph.facebook.com``.

Errors become ``GraphError`` classified by Meta's numeric ``code`` (never by wording: Meta's
titles differ between docs and wire), see ``classify``. Logs carry the code, HTTP status and
``fbtrace_id`` only: never the token, a phone number or message text.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import IO, Any

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter

from whatsapp import metrics

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 3.05


class ErrorKind(StrEnum):
    RETRYABLE = "retryable"  # transient: retry the same request later, with backoff
    PAIR_LIMIT = "pair_limit"  # 131056: back off from this recipient only (4^X seconds)
    WINDOW_CLOSED = "window_closed"  # 131047 (470 legacy): only a template may be sent
    TOKEN = "token"  # noqa: S105 - 190: the access token expired or was revoked; alert
    PERMANENT = "permanent"  # everything else: fix the request, the account or the recipient


_RETRYABLE_CODES = frozenset({130429, 131000, 131016, 2, 133004, 131057, 4, 80007})
_WINDOW_CODES = frozenset({131047, 470})


def classify(code: int | None, http_status: int | None) -> ErrorKind:
    """Meta's error code decides; the HTTP status only when there is no code."""
    if code is not None:
        if code in _RETRYABLE_CODES:
            return ErrorKind.RETRYABLE
        if code == 131056:
            return ErrorKind.PAIR_LIMIT
        if code in _WINDOW_CODES:
            return ErrorKind.WINDOW_CLOSED
        if code == 190:
            return ErrorKind.TOKEN
        if http_status is not None and http_status >= 500:
            return ErrorKind.RETRYABLE  # an unknown code on a server error: Meta's side
        return ErrorKind.PERMANENT
    if http_status is None or http_status >= 500 or http_status in (408, 429):
        return ErrorKind.RETRYABLE  # timeouts, connection errors, bare 5xx
    if http_status == 401:
        return ErrorKind.TOKEN
    return ErrorKind.PERMANENT


class GraphError(Exception):
    """A refused or failed Graph call. ``code`` is Meta's (None for network errors)."""

    def __init__(
        self,
        *,
        code: int | None,
        http_status: int | None,
        title: str = "",
        details: str = "",
        fbtrace_id: str = "",
    ) -> None:
        self.code = code
        self.http_status = http_status
        self.title = title
        self.details = details
        self.fbtrace_id = fbtrace_id
        self.kind = classify(code, http_status)
        super().__init__(f"Graph error code={code} http={http_status} kind={self.kind}")

    @property
    def retryable(self) -> bool:
        return self.kind == ErrorKind.RETRYABLE

    @classmethod
    def from_response(cls, response: requests.Response) -> GraphError:
        error: dict[str, Any] = {}
        try:
            body = response.json()
            if isinstance(body, dict) and isinstance(body.get("error"), dict):
                error = body["error"]
        except ValueError:
            pass
        code = error.get("code")
        code = code if isinstance(code, int) else None
        message = str(error.get("message") or "")
        # Meta prefixes messages with "(#code) "; the title is what follows.
        if message.startswith("(#") and ") " in message:
            message = message.split(") ", 1)[1]
        data = error.get("error_data") if isinstance(error.get("error_data"), dict) else {}
        return cls(
            code=code,
            http_status=response.status_code,
            title=(str(error.get("error_user_title") or "") or message or response.reason or "")[
                :255
            ],
            details=str(data.get("details") or error.get("error_user_msg") or ""),
            fbtrace_id=str(error.get("fbtrace_id") or response.headers.get("x-fb-trace-id", "")),
        )


@dataclass(frozen=True, slots=True)
class MediaUrl:
    """Meta's answer to ``GET /{media-id}``: a download URL valid for 5 minutes."""

    id: str
    url: str
    mime_type: str
    sha256: str
    file_size: int | None


@dataclass(frozen=True, slots=True)
class Download:
    size: int
    sha256_hex: str


class GraphClient:
    """A pooled, timeout-bounded HTTP client for the Graph API (one per thread, see ``get_client``)."""

    def __init__(
        self,
        *,
        base_url: str,
        version: str,
        access_token: str,
        timeout_s: float = 10.0,
        pool_size: int = 20,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.version = version
        self.timeout = (CONNECT_TIMEOUT_SECONDS, timeout_s)
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self.session.headers.update({"Authorization": f"Bearer {access_token}"})

    def _url(self, *parts: str) -> str:
        return "/".join([self.base_url, self.version, *parts])

    def _request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        endpoint = metrics.graph_endpoint(method, url)
        started = time.perf_counter()
        try:
            response = self.session.request(method, url, timeout=self.timeout, **kwargs)
        except requests.Timeout as exc:
            metrics.graph_call(endpoint, "timeout", time.perf_counter() - started)
            raise GraphError(code=None, http_status=None, title="timeout") from exc
        except requests.RequestException as exc:
            metrics.graph_call(endpoint, "network", time.perf_counter() - started)
            raise GraphError(code=None, http_status=None, title=type(exc).__name__) from exc
        elapsed = time.perf_counter() - started
        if response.status_code >= 400:
            error = GraphError.from_response(response)
            metrics.graph_call(endpoint, str(error.kind), elapsed, error.code)
            response.close()
            logger.warning(
                "graph: request refused",
                extra={
                    "graph_code": error.code,
                    "http_status": error.http_status,
                    "fbtrace_id": error.fbtrace_id,
                    "error_kind": str(error.kind),
                },
            )
            raise error
        metrics.graph_call(endpoint, "ok", elapsed)
        return response

    def _json(self, response: requests.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError as exc:
            raise GraphError(
                code=None, http_status=response.status_code, title="invalid JSON from Graph"
            ) from exc
        if not isinstance(body, dict):
            raise GraphError(code=None, http_status=response.status_code, title="unexpected body")
        return body

    def send(self, phone_number_id: str, body: dict[str, Any]) -> str:
        """POST ``/{phone-number-id}/messages``; return the wamid Meta accepted (not delivered)."""
        response = self._request("POST", self._url(phone_number_id, "messages"), json=body)
        data = self._json(response)
        try:
            wamid = data["messages"][0]["id"]
        except (KeyError, IndexError, TypeError) as exc:
            # Accepted (2xx) without an id: we cannot match statuses; do not retry blindly.
            raise GraphError(
                code=None, http_status=response.status_code, title="no message id in response"
            ) from exc
        if not isinstance(wamid, str) or not wamid:
            raise GraphError(code=None, http_status=response.status_code, title="bad message id")
        return wamid

    def upload_media(
        self, phone_number_id: str, *, data: bytes, mime_type: str, filename: str
    ) -> str:
        """POST ``/{phone-number-id}/media`` (multipart ``file``, ``type``, ``messaging_product``).

        Returns the media id Meta assigned (valid 30 days), to send with ``{"id": …}``.
        """
        response = self._request(
            "POST",
            self._url(phone_number_id, "media"),
            data={"messaging_product": "whatsapp", "type": mime_type},
            files={"file": (filename or "arquivo", data, mime_type)},
        )
        body = self._json(response)
        media_id = body.get("id")
        if isinstance(media_id, int):
            media_id = str(media_id)
        if not isinstance(media_id, str) or not media_id:
            # Accepted without an id: nothing we could send; do not upload blindly again.
            raise GraphError(
                code=None, http_status=response.status_code, title="no media id in response"
            )
        return media_id

    def list_templates(self, waba_id: str, *, page_size: int = 100, max_pages: int = 50):
        """GET ``/{waba-id}/message_templates``, following ``paging.next``; yields each template.

        Meta pages with cursors; ``paging.next`` is absent on the last page.
        """
        url = self._url(waba_id, "message_templates")
        params: dict[str, Any] | None = {
            "fields": "id,name,language,status,category,components,rejected_reason",
            "limit": page_size,
        }
        for _page in range(max_pages):
            data = self._json(self._request("GET", url, params=params))
            rows = data.get("data")
            if not isinstance(rows, list):
                raise GraphError(code=None, http_status=200, title="templates: no data list")
            yield from (row for row in rows if isinstance(row, dict))
            following = (data.get("paging") or {}).get("next")
            if not isinstance(following, str) or not following:
                return
            url, params = following, None  # the next URL carries the cursor and fields

    def mark_read(self, phone_number_id: str, wamid: str) -> None:
        """Mark an inbound message (and the earlier ones of the thread) as read."""
        body = {"messaging_product": "whatsapp", "status": "read", "message_id": wamid}
        self._request("POST", self._url(phone_number_id, "messages"), json=body).close()

    def media_info(self, media_id: str, *, phone_number_id: str = "") -> MediaUrl:
        """Step 1 of a download: ``GET /{media-id}`` → short-lived URL, MIME type, sha256, size."""
        params = {"phone_number_id": phone_number_id} if phone_number_id else None
        data = self._json(self._request("GET", self._url(media_id), params=params))
        size = data.get("file_size")
        url = data.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise GraphError(code=None, http_status=200, title="no media url in response")
        return MediaUrl(
            id=str(data.get("id") or media_id),
            url=url,
            mime_type=str(data.get("mime_type") or ""),
            sha256=str(data.get("sha256") or ""),
            file_size=int(size) if isinstance(size, int | str) and str(size).isdigit() else None,
        )

    def media_download(self, url: str, *, into: IO[bytes], max_bytes: int) -> Download:
        """Step 2: stream the file (bearer token required) into ``into``, bounded by ``max_bytes``.

        Raises ``MediaTooLarge`` past the bound, so a lying server cannot fill the disk.
        """
        response = self._request("GET", url, stream=True)
        digest = hashlib.sha256()
        size = 0
        try:
            for chunk in response.iter_content(chunk_size=64 * 1024):
                size += len(chunk)
                if size > max_bytes:
                    raise MediaTooLarge(max_bytes)
                digest.update(chunk)
                into.write(chunk)
        except requests.RequestException as exc:
            raise GraphError(code=None, http_status=None, title=type(exc).__name__) from exc
        finally:
            response.close()
        return Download(size=size, sha256_hex=digest.hexdigest())


class MediaTooLarge(Exception):
    def __init__(self, max_bytes: int) -> None:
        super().__init__(f"media larger than {max_bytes} bytes")
        self.max_bytes = max_bytes


_local = threading.local()


def get_client() -> GraphClient:
    """This thread's client for the current settings (a new one when the settings change)."""
    config = (
        settings.WHATSAPP_API_BASE_URL,
        settings.WHATSAPP_API_VERSION,
        settings.WHATSAPP_ACCESS_TOKEN,
        float(getattr(settings, "WHATSAPP_HTTP_TIMEOUT_SECONDS", 10.0)),
    )
    client = getattr(_local, "client", None)
    if client is None or getattr(_local, "config", None) != config:
        if client is not None:
            client.session.close()
        client = GraphClient(
            base_url=config[0], version=config[1], access_token=config[2], timeout_s=config[3]
        )
        _local.client, _local.config = client, config
    return client

"""A fake ERP speaking the REST adapter's JSON API, on 127.0.0.1, scriptable to fail.

The real ``isp.erp.rest`` client talks HTTP to it exactly as it would to an ISP's ERP. Import
the fixtures with ``from isp.tests.fake_erp import *  # noqa: F403`` and use ``erp_rest``
(the server, reset, with ``ERP_ADAPTER=rest`` pointed at it). Script failures with
``fail(status)``, ``delay(seconds)`` and ``bad_json()``; read ``requests`` to see what the
client sent.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

__all__ = ["FakeErp", "erp_rest", "erp_server"]

TOKEN = "test-erp-token"


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


@dataclass
class Script:
    """One scripted answer, used by the next request whose path contains ``match``."""

    status: int = 500
    delay_s: float = 0.0
    raw: bytes | None = None
    match: str = ""


@dataclass
class FakeErp:
    base_url: str = ""
    contracts: dict[str, dict[str, Any]] = field(default_factory=dict)
    invoices: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    connection: dict[str, dict[str, Any]] = field(default_factory=dict)
    windows: list[dict[str, Any]] = field(default_factory=list)
    orders: list[dict[str, Any]] = field(default_factory=list)
    unlocks: list[dict[str, Any]] = field(default_factory=list)
    requests: list[Recorded] = field(default_factory=list)
    scripts: list[Script] = field(default_factory=list)
    idempotency: dict[str, tuple[int, Any]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        with self.lock:
            for collection in (
                self.contracts,
                self.invoices,
                self.connection,
                self.idempotency,
            ):
                collection.clear()
            for items in (self.windows, self.orders, self.unlocks, self.requests, self.scripts):
                items.clear()

    # --- scripting -------------------------------------------------------------------------

    def fail(self, status: int = 500, *, times: int = 1, match: str = "") -> None:
        self.scripts.extend(Script(status=status, match=match) for _ in range(times))

    def delay(self, seconds: float, *, times: int = 1, match: str = "") -> None:
        self.scripts.extend(Script(status=0, delay_s=seconds, match=match) for _ in range(times))

    def bad_json(self, *, times: int = 1, match: str = "") -> None:
        self.scripts.extend(
            Script(status=200, raw=b"<html>502 Bad Gateway</html>", match=match)
            for _ in range(times)
        )

    def _take_script(self, path: str) -> Script | None:
        with self.lock:
            for i, script in enumerate(self.scripts):
                if script.match in path:
                    return self.scripts.pop(i)
        return None

    # --- data --------------------------------------------------------------------------------

    def add_contract(
        self,
        ref: str,
        *,
        cpf: str,
        phones: list[str],
        status: str = "active",
        holder: str = "Cliente do ERP",
        plan: tuple[str, int, int, str] = ("Fibra 300 Mega", 300, 150, "99.90"),
        city: str = "Campinas",
        neighbourhood: str = "Cambuí",
        olt: str = "OLT-CAM-01",
    ) -> dict[str, Any]:
        contract = {
            "ref": ref,
            "holder": {"name": holder, "cpf": cpf},
            "status": status,
            "plan": {
                "name": plan[0],
                "download_mbps": plan[1],
                "upload_mbps": plan[2],
                "monthly_price": plan[3],
            },
            "address": {"street": "Rua do ERP, 42", "neighbourhood": neighbourhood, "city": city},
            "network": {"pop": "POP-CAM", "olt": olt, "box": f"CTO-{ref}"},
            "phones": phones,
        }
        self.contracts[ref] = contract
        return contract

    def add_invoice(self, ref: str, **fields: Any) -> dict[str, Any]:
        invoice = {
            "id": f"{ref}-202611",
            "reference_month": "2026-11",
            "due_date": "2026-12-10",
            "amount": "99.90",
            "status": "open",
            "digitable_line": "34191.79001 01043.510047 91020.150008 5 91230026000",
            "pix_code": "00020126580014br.gov.bcb.pix0136erp-fake-key5204000053039865405"
            "99.905802BR5907FIBRANET6009SAO PAULO62070503***6304ABCD",
            **fields,
        }
        self.invoices.setdefault(ref, []).append(invoice)
        return invoice

    def add_window(self, window_id: str, starts_at: datetime, hours: int = 4) -> None:
        self.windows.append(
            {
                "id": window_id,
                "start": starts_at.isoformat(),
                "end": (starts_at + timedelta(hours=hours)).isoformat(),
            }
        )

    # --- the API ------------------------------------------------------------------------------

    def handle(self, method: str, path: str, query: dict, body: Any, headers: dict) -> tuple:
        """(status, JSON-able body or bytes) for one request."""
        if headers.get("authorization") != f"Bearer {TOKEN}":
            return 401, {"error": "unauthorized"}
        parts = [unquote(p) for p in path.strip("/").split("/")]
        if parts[:2] != ["v1", "contracts"]:
            return 404, {"error": "not_found"}
        rest = parts[2:]
        if method == "POST" and rest == ["search"]:
            return 200, {"contracts": self._search(body or {})}
        if not rest or rest[0] not in self.contracts:
            return 404, {"error": "unknown_contract"}
        ref, tail = rest[0], rest[1:]
        contract = self.contracts[ref]
        if method == "GET" and not tail:
            return 200, contract
        if method == "GET" and tail == ["invoices"]:
            wanted = (query.get("status") or [""])[0]
            items = [i for i in self.invoices.get(ref, []) if not wanted or i["status"] == wanted]
            return 200, {"invoices": items}
        if method == "GET" and len(tail) == 3 and tail[0] == "invoices" and tail[2] == "pdf":
            if not any(i["id"] == tail[1] for i in self.invoices.get(ref, [])):
                return 404, {"error": "unknown_invoice"}
            return 200, b"%PDF-1.4\n% fake ERP boleto\n%%EOF\n"
        if method == "GET" and tail == ["connection"]:
            if contract["status"] == "blocked" and not self._unlocked(ref):
                return 200, {"state": "blocked", "since": None}
            return 200, self.connection.get(ref, {"state": "unknown", "since": None})
        if method == "GET" and tail == ["visit-windows"]:
            return 200, {"windows": list(self.windows)}
        if method == "POST" and tail == ["service-orders"]:
            return self._idempotent(headers, lambda: self._book(ref, body or {}))
        if method == "POST" and tail == ["trust-unlock"]:
            return self._idempotent(headers, lambda: self._unlock(ref, body or {}))
        return 404, {"error": "not_found"}

    def _search(self, body: dict) -> list[dict]:
        if "cpf" in body:
            return [c for c in self.contracts.values() if c["holder"]["cpf"] == body["cpf"]]
        if "phone" in body:
            return [c for c in self.contracts.values() if body["phone"] in c["phones"]]
        return []

    def _idempotent(self, headers: dict, action) -> tuple[int, Any]:
        key = headers.get("idempotency-key", "")
        with self.lock:
            if key and key in self.idempotency:
                return self.idempotency[key]
        result = action()
        if key:
            with self.lock:
                self.idempotency[key] = result
        return result

    def _book(self, ref: str, body: dict) -> tuple[int, Any]:
        window = next((w for w in self.windows if w["id"] == body.get("window_id")), None)
        if window is None:
            return 409, {"error": "window_unavailable"}
        self.windows.remove(window)
        number = f"OS-ERP-{len(self.orders) + 1:04d}"
        self.orders.append({"number": number, "contract": ref, "window": window})
        return 201, {"number": number, "window": window}

    def _unlocked(self, ref: str) -> bool:
        return any(u["contract"] == ref for u in self.unlocks)

    def _unlock(self, ref: str, body: dict) -> tuple[int, Any]:
        if self.contracts[ref]["status"] != "blocked":
            return 409, {"error": "not_blocked"}
        until = datetime.now().astimezone() + timedelta(days=int(body.get("days", 3)))
        self.unlocks.append({"contract": ref, "until": until.isoformat()})
        return 200, {"until": until.isoformat()}


def _handler(fake: FakeErp):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self, method: str) -> None:
            split = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = None
            headers = {k.lower(): v for k, v in self.headers.items()}
            fake.requests.append(Recorded(method, split.path, parse_qs(split.query), headers, body))
            script = fake._take_script(split.path)
            if script is not None and script.delay_s:
                time.sleep(script.delay_s)
            if script is not None and script.status:
                status, payload = script.status, script.raw or b'{"error": "scripted"}'
            else:
                status, payload = fake.handle(
                    method, split.path, parse_qs(split.query), body, headers
                )
            if isinstance(payload, bytes):
                data = payload
                ctype = "application/pdf" if payload.startswith(b"%PDF") else "application/json"
            else:
                data = json.dumps(payload).encode()
                ctype = "application/json"
            try:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (its timeout): nothing to answer

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def log_message(self, format, *args):
            pass

    return Handler


@pytest.fixture(scope="session")
def erp_server() -> Iterator[FakeErp]:
    fake = FakeErp()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    server.daemon_threads = True
    fake.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="fake-erp", daemon=True)
    thread.start()
    yield fake
    server.shutdown()
    server.server_close()


@pytest.fixture
def erp_rest(erp_server: FakeErp, settings) -> Iterator[FakeErp]:
    """The fake ERP, emptied, with the real REST adapter pointed at it (fast timeouts)."""
    from isp.erp.rest import breaker

    erp_server.reset()
    settings.ERP_ADAPTER = "rest"
    settings.ERP_BASE_URL = erp_server.base_url
    settings.ERP_TOKEN = TOKEN
    settings.ERP_TIMEOUT_SECONDS = 0.5
    settings.ERP_CONNECT_TIMEOUT_SECONDS = 0.5
    settings.ERP_RETRIES = 2
    settings.ERP_RETRY_BACKOFF_SECONDS = 0.0
    settings.ERP_BREAKER_FAIL_MAX = 3
    settings.ERP_BREAKER_RESET_SECONDS = 30.0
    breaker().reset()
    yield erp_server
    erp_server.reset()

"""Loopback servers for tests: the real Django app (with the Graph simulator) and a webhook sink.

The Graph client under test talks HTTP to the simulator served by a threaded WSGI server on
127.0.0.1 (an ephemeral port), exactly as it would talk to Meta. Import the fixtures into a test
module with ``from whatsapp.tests.loopback import *  # noqa: F403``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler

from whatsapp.simulator.state import SIM

__all__ = ["graph", "loopback_url", "sink_server", "webhook_sink"]


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):
        pass


@pytest.fixture(scope="session")
def loopback_url():
    """The whole Django app on a loopback port, for the test session."""
    server = ThreadedWSGIServer(("127.0.0.1", 0), _QuietHandler, allow_reuse_address=False)
    server.set_app(WSGIHandler())
    thread = threading.Thread(target=server.serve_forever, name="loopback-django", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@dataclass
class Sink:
    url: str
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    status: int = 200


@pytest.fixture(scope="session")
def sink_server():
    sink = Sink(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            sink.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(sink.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    sink.url = f"http://127.0.0.1:{server.server_address[1]}/webhooks/whatsapp/"
    thread = threading.Thread(target=server.serve_forever, name="webhook-sink", daemon=True)
    thread.start()
    yield sink
    server.shutdown()
    server.server_close()


@pytest.fixture
def webhook_sink(sink_server, settings):
    """Where the simulator posts its webhooks in tests (a tiny HTTP server that records them)."""
    sink_server.received.clear()
    sink_server.status = 200
    settings.SIMULATOR_WEBHOOK_URL = sink_server.url
    return sink_server


@pytest.fixture
def graph(loopback_url, webhook_sink, settings):
    """The simulator, reset, with the real client's base URL pointed at it; returns ``SIM``."""
    settings.WHATSAPP_API_BASE_URL = f"{loopback_url}/simulator/graph"
    settings.WHATSAPP_RETRY_BASE_SECONDS = 0.0
    settings.WHATSAPP_EAGER_DEFERRED_RETRIES = False
    SIM.reset()
    SIM.status_delays = (0.0, 0.0)
    yield SIM
    SIM.wait_idle(2.0)
    SIM.reset()

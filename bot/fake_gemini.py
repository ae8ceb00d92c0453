"""A Gemini-shaped fake HTTP server for tests, benchmarks and the local demo.

The real ``google-genai`` SDK is pointed at it with ``HttpOptions(base_url=fake.base_url)``, so the
code under test builds real requests and parses real-looking responses over loopback.

Contract:

- Serves ``POST /{version}/models/{model}:generateContent`` (the SDK 3.x path when ``base_url`` and
  an API key are set; ``version`` is ``v1`` by default, ``v1beta`` also works) and ``GET /`` (a
  readiness probe). Anything else gets a Google-shaped 404.
- Every generateContent request is recorded (:attr:`FakeGemini.requests`) before it is answered.
- Answers come from a FIFO queued with :meth:`FakeGemini.queue` using the helpers below
  (:func:`ok_json`, :func:`ok_text`, :func:`rate_limited`, :func:`unavailable`, :func:`slow`,
  :func:`malformed`, :func:`safety_block`, :func:`http_error`). When the queue is empty the fake
  answers with a plausible default: a keyword-based triage JSON for text, a transcript for audio
  and a router reading for images (or whatever :meth:`FakeGemini.set_default` installed).
- Stdlib only and thread-safe: one thread per connection, one lock around the queue and the log.

Run it standalone with ``python -m bot.fake_gemini --port 8765``.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import re
import threading
import unicodedata
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

__all__ = [
    "FakeGemini",
    "FakeResponse",
    "RecordedRequest",
    "decode_base64",
    "default_response",
    "http_error",
    "keyword_intent",
    "main",
    "malformed",
    "ok_json",
    "ok_text",
    "rate_limited",
    "safety_block",
    "slow",
    "unavailable",
]

FAKE_MODEL_VERSION = "fake-gemini-1"

# google.rpc.Code names the real API puts in error.status, by HTTP status.
_RPC_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    408: "DEADLINE_EXCEEDED",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "NOT_IMPLEMENTED",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}

_PATH_RE = re.compile(r"^/(?P<version>v[0-9a-z]+)/models/(?P<model>[^/:]+):(?P<action>[A-Za-z]+)$")


# --------------------------------------------------------------------------------------------
# Scripted responses
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FakeResponse:
    """One scripted answer.

    ``body`` is the exact bytes to send; ``None`` means "whatever the default responder says for
    this request" (used by :func:`slow` without an explicit follow-up). ``delay_s`` is waited
    before answering; a client that timed out meanwhile just finds the connection closed.
    """

    status: int
    body: bytes | None
    delay_s: float = 0.0
    content_type: str = "application/json; charset=UTF-8"


def _json_bytes(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode("utf-8")


def _usage(prompt_tokens: int | None, output_tokens: int | None) -> dict[str, int] | None:
    if prompt_tokens is None and output_tokens is None:
        return None
    usage = {
        "promptTokenCount": prompt_tokens or 0,
        "candidatesTokenCount": output_tokens or 0,
    }
    usage["totalTokenCount"] = usage["promptTokenCount"] + usage["candidatesTokenCount"]
    return usage


def _candidate_body(
    text: str, *, finish_reason: str, prompt_tokens: int | None, output_tokens: int | None
) -> bytes:
    body: dict[str, Any] = {
        "candidates": [
            {
                "content": {"role": "model", "parts": [{"text": text}]},
                "finishReason": finish_reason,
                "index": 0,
            }
        ],
        "modelVersion": FAKE_MODEL_VERSION,
        "responseId": "fake-response",
    }
    usage = _usage(prompt_tokens, output_tokens)
    if usage is not None:
        body["usageMetadata"] = usage
    return _json_bytes(body)


def ok_json(
    obj: Any, prompt_tokens: int | None = 120, output_tokens: int | None = 40
) -> FakeResponse:
    """200 whose single candidate's text is ``obj`` serialised as JSON (structured output)."""
    text = json.dumps(obj, ensure_ascii=False)
    return FakeResponse(
        200,
        _candidate_body(
            text, finish_reason="STOP", prompt_tokens=prompt_tokens, output_tokens=output_tokens
        ),
    )


def ok_text(
    text: str, prompt_tokens: int | None = 300, output_tokens: int | None = 30
) -> FakeResponse:
    """200 whose single candidate is plain text (e.g. an audio transcript)."""
    return FakeResponse(
        200,
        _candidate_body(
            text, finish_reason="STOP", prompt_tokens=prompt_tokens, output_tokens=output_tokens
        ),
    )


def _format_duration(seconds: float) -> str:
    # google.protobuf.Duration's JSON form: decimal seconds with an "s" suffix ("7s", "0.5s").
    if float(seconds).is_integer():
        return f"{int(seconds)}s"
    return f"{seconds:.9f}".rstrip("0") + "s"


def _error_bytes(status: int, message: str, details: list[dict[str, Any]] | None = None) -> bytes:
    error: dict[str, Any] = {
        "code": status,
        "message": message,
        "status": _RPC_STATUS.get(status, "UNKNOWN"),
    }
    if details:
        error["details"] = details
    return _json_bytes({"error": error})


def http_error(status: int, message: str = "fake error") -> FakeResponse:
    """An error in the Google API shape: ``{"error": {"code", "message", "status"}}``."""
    return FakeResponse(status, _error_bytes(status, message))


def rate_limited(retry_delay_s: float = 7.0) -> FakeResponse:
    """429 RESOURCE_EXHAUSTED with QuotaFailure, Help and RetryInfo details, like the real API.

    The SDK does not honour ``RetryInfo.retryDelay``; our client surfaces it as
    ``GeminiRetryable.retry_after_s`` so the Celery task can wait that long.
    """
    delay = _format_duration(retry_delay_s)
    details = [
        {
            "@type": "type.googleapis.com/google.rpc.QuotaFailure",
            "violations": [
                {
                    "quotaMetric": "generativelanguage.googleapis.com/generate_content_requests",
                    "quotaId": "GenerateRequestsPerMinutePerProjectPerModel",
                }
            ],
        },
        {
            "@type": "type.googleapis.com/google.rpc.Help",
            "links": [
                {
                    "description": "Learn more about Gemini API quotas",
                    "url": "https://ai.google.dev/gemini-api/docs/rate-limits",
                }
            ],
        },
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay},
    ]
    message = f"You exceeded your current quota. Please retry in {delay}."
    return FakeResponse(429, _error_bytes(429, message, details))


def unavailable(message: str = "The model is overloaded. Please try again later.") -> FakeResponse:
    """503 UNAVAILABLE, what the API answers when a model is overloaded."""
    return http_error(503, message)


def slow(seconds: float, then: FakeResponse | None = None) -> FakeResponse:
    """Wait ``seconds`` and then answer ``then`` (or the default answer for the request).

    Queue it with a delay beyond the client's timeout to exercise the timeout path.
    """
    if then is None:
        return FakeResponse(200, None, delay_s=seconds)
    return FakeResponse(then.status, then.body, delay_s=seconds, content_type=then.content_type)


def malformed() -> FakeResponse:
    """200 with candidate text that is not valid JSON for any of our schemas."""
    return ok_text('{"intent": "no_connection", "confidence": ', output_tokens=8)


def safety_block(where: str = "prompt") -> FakeResponse:
    """A safety block with no text.

    ``where="prompt"``: ``promptFeedback.blockReason = SAFETY`` and no candidates (the input was
    blocked). ``where="candidate"``: one candidate with ``finishReason = SAFETY`` and no content
    (the output was blocked).
    """
    ratings = [{"category": "HARM_CATEGORY_HARASSMENT", "probability": "HIGH", "blocked": True}]
    body: dict[str, Any]
    if where == "prompt":
        body = {
            "promptFeedback": {"blockReason": "SAFETY", "safetyRatings": ratings},
            "usageMetadata": {"promptTokenCount": 50, "totalTokenCount": 50},
            "modelVersion": FAKE_MODEL_VERSION,
        }
    elif where == "candidate":
        body = {
            "candidates": [{"finishReason": "SAFETY", "index": 0, "safetyRatings": ratings}],
            "usageMetadata": {"promptTokenCount": 50, "totalTokenCount": 50},
            "modelVersion": FAKE_MODEL_VERSION,
        }
    else:
        raise ValueError(f"where must be 'prompt' or 'candidate', not {where!r}")
    return FakeResponse(200, _json_bytes(body))


# --------------------------------------------------------------------------------------------
# Recorded requests
# --------------------------------------------------------------------------------------------


def decode_base64(data: str) -> bytes:
    """Decode inline data in either alphabet: the SDK sends URL-safe base64 (``-_``), while the
    API and other clients use the standard one (``+/``); protobuf JSON accepts both."""
    return base64.b64decode(data, altchars=b"-_")


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake received. ``headers`` keys are lower-cased."""

    method: str
    path: str
    version: str | None
    model: str | None
    action: str | None
    headers: dict[str, str]
    body: Any

    def _parts(self) -> list[dict[str, Any]]:
        parts: list[dict[str, Any]] = []
        if not isinstance(self.body, dict):
            return parts
        for content in self.body.get("contents") or []:
            if isinstance(content, dict):
                parts.extend(p for p in content.get("parts") or [] if isinstance(p, dict))
        return parts

    @property
    def text(self) -> str:
        """All text parts of ``contents`` joined by newlines (not the system instruction)."""
        return "\n".join(str(p["text"]) for p in self._parts() if "text" in p)

    @property
    def system_text(self) -> str:
        """The system instruction's text parts joined by newlines ("" when absent)."""
        if not isinstance(self.body, dict):
            return ""
        sys = self.body.get("systemInstruction") or self.body.get("system_instruction") or {}
        return "\n".join(str(p.get("text", "")) for p in sys.get("parts") or [])

    @property
    def generation_config(self) -> dict[str, Any]:
        """``generationConfig`` of the body ({} when absent)."""
        if not isinstance(self.body, dict):
            return {}
        return self.body.get("generationConfig") or self.body.get("generation_config") or {}

    @property
    def inline_data(self) -> list[dict[str, str]]:
        """Inline blobs as ``{"mime_type", "data"}`` whichever key casing the client used.

        ``data`` is still base64 (see :func:`decode_base64`); the SDK sends the blob as
        ``inlineData: {"data", "mime_type"}`` — camelCase outside, snake_case inside.
        """
        blobs = []
        for part in self._parts():
            blob = part.get("inlineData") or part.get("inline_data")
            if isinstance(blob, dict):
                blobs.append(
                    {
                        "mime_type": blob.get("mimeType") or blob.get("mime_type") or "",
                        "data": blob.get("data") or "",
                    }
                )
        return blobs


# --------------------------------------------------------------------------------------------
# Default answers (so demos work with an empty queue)
# --------------------------------------------------------------------------------------------


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


# Ordered: the first matching rule wins, so must-be-human intents come first.
_INTENT_RULES: list[tuple[str, re.Pattern[str]]] = [
    (intent, re.compile(pattern))
    for intent, pattern in [
        ("human", r"atendente|humano|\bpessoa\b|falar com (algu|gente)"),
        ("cancellation", r"cancel"),
        ("payment_confirmation", r"paguei|comprovante|\bja pag|pagamento (feito|realizado)"),
        (
            "no_connection",
            (
                r"sem (internet|conexao|sinal)|caiu|nao (tenho|tem|funciona|conecta)"
                r"|luz vermelha|\blos\b|offline|fora do ar"
            ),
        ),
        ("slow_connection", r"lent|travand|devagar|oscil|wi-?fi|\bsinal\b|ping|\blag\b"),
        ("technical_visit", r"visita|tecnico|instala"),
        ("plan_change", r"\bplano\b|upgrade|\bmega\b|velocidade maior"),
        ("billing", r"boleto|fatura|segunda via|2a via|\bconta\b|\bdevo\b|\bpix\b|cobranc|valor"),
        ("greeting", r"^\W*(oi|ola|bom dia|boa tarde|boa noite|e ai)\b"),
    ]
]
_NEGATIVE = re.compile(r"absurd|pessim|horrivel|raiva|palhacada|descaso|lixo|!!|procon|anatel")
_POSITIVE = re.compile(r"obrigad|valeu|otimo|perfeito|excelente|resolveu")
_CUSTOMER_BLOCK = re.compile(r"<customer_message>(.*?)</customer_message>", re.DOTALL)


def keyword_intent(text: str) -> str:
    """A crude accent-insensitive pt-BR keyword classifier; returns one of the triage intents."""
    folded = _fold(text)
    for intent, pattern in _INTENT_RULES:
        if pattern.search(folded):
            return intent
    return "other"


def _customer_text(request: RecordedRequest) -> str:
    text = request.text
    blocks = _CUSTOMER_BLOCK.findall(text)
    if not blocks:
        return text
    inner = blocks[-1].strip()
    try:
        decoded = json.loads(inner)
    except ValueError:
        return inner
    return decoded if isinstance(decoded, str) else inner


def _default_triage(text: str) -> dict[str, Any]:
    intent = keyword_intent(text)
    folded = _fold(text)
    if _NEGATIVE.search(folded):
        sentiment, score = "negative", -0.7
    elif _POSITIVE.search(folded):
        sentiment, score = "positive", 0.6
    else:
        sentiment, score = "neutral", 0.0
    return {
        "intent": intent,
        "sentiment": sentiment,
        "sentiment_score": score,
        "confidence": 0.45 if intent == "other" else 0.9,
        "kb_entry_id": None,
        "answer": None,
        "reason": f"fake_gemini keyword match: {intent}",
    }


_DEFAULT_TRANSCRIPT = "Oi, minha internet está sem conexão desde ontem à noite."
_DEFAULT_PHOTO = {
    "leds": [
        {"name": "POWER", "color": "green", "state": "on"},
        {"name": "PON", "color": "green", "state": "on"},
        {"name": "LOS", "color": "red", "state": "on"},
    ],
    "diagnosis": "los_red",
    "confidence": 0.85,
}


def default_response(request: RecordedRequest) -> FakeResponse:
    """The answer used when the queue is empty: derived from what the request carries."""
    mimes = [blob["mime_type"] for blob in request.inline_data]
    if any(m.startswith("audio/") for m in mimes):
        return ok_text(_DEFAULT_TRANSCRIPT)
    if any(m.startswith("image/") for m in mimes):
        return ok_json(_DEFAULT_PHOTO)
    return ok_json(_default_triage(_customer_text(request)))


Responder = Callable[[RecordedRequest], FakeResponse]


# --------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 keep-alive, like Google's front end; the SDK's httpx2 pool reuses connections.
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        # Silence the stderr access log: tests and benchmarks would drown in it.
        return

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] in ("/", "/healthz"):
            self._send(FakeResponse(200, _json_bytes({"fake_gemini": True})))
        else:
            self._send(http_error(404, f"Unknown path {self.path}"))

    def do_POST(self) -> None:
        fake = self.server.fake
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        path = self.path.split("?", 1)[0]
        match = _PATH_RE.match(path)
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = None
        request = RecordedRequest(
            method="POST",
            path=path,
            version=match["version"] if match else None,
            model=match["model"] if match else None,
            action=match["action"] if match else None,
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        if not match or match["action"] != "generateContent":
            self._send(http_error(404, f"Unknown path {path}"))
            return
        fake._record(request)
        if raw and body is None:
            self._send(http_error(400, "Invalid JSON payload received."))
            return
        if fake.api_key is not None and request.headers.get("x-goog-api-key") != fake.api_key:
            self._send(http_error(400, "API key not valid. Please pass a valid API key."))
            return
        response = fake._next_response(request)
        if response.delay_s > 0 and fake._stopping.wait(response.delay_s):
            return  # shutting down: drop the request rather than hold the test up
        if response.body is None:
            response = fake._default_for(request)
        self._send(response)

    def _send(self, response: FakeResponse) -> None:
        body = response.body or b""
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (timeout); that is the behaviour under test, not a fault.
            self.close_connection = True


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a handler stuck in a slow answer must not block process exit
    allow_reuse_address = True
    # The stdlib default backlog (5) makes benchmark bursts stall on SYN retransmits.
    request_queue_size = 256
    fake: FakeGemini


@dataclass
class FakeGemini:
    """A Gemini-shaped server on 127.0.0.1; use it as a context manager or start()/stop().

    ``port=0`` picks an ephemeral port; read :attr:`base_url` after start. When ``api_key`` is
    set, requests without that ``x-goog-api-key`` get a 400 like the real API's invalid key.
    """

    host: str = "127.0.0.1"
    port: int = 0
    api_key: str | None = None
    default: Responder | FakeResponse | None = None
    _queue: deque[FakeResponse] = field(default_factory=deque, init=False, repr=False)
    _requests: list[RecordedRequest] = field(default_factory=list, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _stopping: threading.Event = field(default_factory=threading.Event, init=False, repr=False)
    _server: _Server | None = field(default=None, init=False, repr=False)
    _thread: threading.Thread | None = field(default=None, init=False, repr=False)

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Self:
        """Bind and serve in a daemon thread; returns self. Idempotent."""
        if self._server is not None:
            return self
        server = self._bind()
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.name = f"fake-gemini-{self.port}"
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket; slow answers in flight are abandoned."""
        self._stopping.set()
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted (for ``main``); binds if needed."""
        server = self._server or self._bind()
        try:
            server.serve_forever(poll_interval=0.2)
        finally:
            self._stopping.set()
            server.server_close()
            self._server = None

    def _bind(self) -> _Server:
        self._stopping.clear()
        server = _Server((self.host, self.port), _Handler)
        server.fake = self
        self._server = server
        self.port = server.server_address[1]
        return server

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>`` — pass as ``GEMINI_BASE_URL`` / ``HttpOptions.base_url``."""
        return f"http://{self.host}:{self.port}"

    # -- scripting ---------------------------------------------------------------------------

    def queue(self, *responses: FakeResponse) -> None:
        """Append answers; each request consumes one, in order, until the queue is empty."""
        with self._lock:
            self._queue.extend(responses)

    def set_default(self, default: Responder | FakeResponse | None) -> None:
        """Answer for an empty queue: a fixed response, a function of the request, or None
        (the built-in :func:`default_response`)."""
        with self._lock:
            self.default = default

    def reset(self) -> None:
        """Forget queued answers and recorded requests."""
        with self._lock:
            self._queue.clear()
            self._requests.clear()

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of the generateContent requests received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    @property
    def pending(self) -> int:
        """How many queued answers have not been used yet."""
        with self._lock:
            return len(self._queue)

    # -- used by the handler -----------------------------------------------------------------

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _next_response(self, request: RecordedRequest) -> FakeResponse:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
        return self._default_for(request)

    def _default_for(self, request: RecordedRequest) -> FakeResponse:
        with self._lock:
            default = self.default
        if default is None:
            return default_response(request)
        if isinstance(default, FakeResponse):
            return default
        return default(request)


def main(argv: list[str] | None = None) -> None:
    """Command line: ``python -m bot.fake_gemini [--host 127.0.0.1] [--port 8765]``."""
    parser = argparse.ArgumentParser(description="Gemini-shaped fake API server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--api-key", default=None, help="reject requests without this key")
    args = parser.parse_args(argv)
    fake = FakeGemini(host=args.host, port=args.port, api_key=args.api_key)
    fake._bind()
    print(f"fake Gemini listening on {fake.base_url}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is the normal way to stop it
        fake.serve_forever()


if __name__ == "__main__":
    main()

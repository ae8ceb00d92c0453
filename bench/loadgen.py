"""What the webhook benchmarks share: Meta-like signed bodies and the open-loop load generator.

Used by ``bench/webhook_ingest.py`` (gunicorn + a worker, no balancer), ``bench/fleet_ingest.py``
(the whole local fleet) and ``bench/ws_capacity.py``:

- ``corpus_messages()``: one message of each common type from the payload corpus, text weighted;
- ``BodyMaker``: a signed Meta envelope for index ``i`` (fresh wamids, customers from a pool, one
  or several messages per POST), made on demand so a five-minute run does not hold 400,000 bodies;
- ``client_process``: sends bodies at a fixed rate over keep-alive connections, open loop
  (latency counts from each request's scheduled time, so a stalled server is not hidden);
- ``pct``, ``proc_*``: percentiles and /proc readings (CPU seconds, RSS) of a process tree;
- ``log_in``: an agent's log-in through the balancer, as a browser does.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import os
import random
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PHONE_NUMBER_ID = "100000000000001"


def corpus_messages() -> list[dict]:
    """One corpus message per type (text, image, audio, …), text six times: real traffic's mix."""
    corpus = Path(
        os.environ.get("WHATSAPP_CORPUS_DIR", ROOT.parent / "shared" / "whatsapp-payloads")
    )
    wanted = {"text", "image", "audio", "interactive", "location", "document", "button"}
    found: dict[str, dict] = {}
    for path in sorted(corpus.rglob("*.json")):
        try:
            data = json.loads(path.read_bytes())
        except ValueError:
            continue
        if not isinstance(data, dict) or data.get("object") != "whatsapp_business_account":
            continue
        for entry in data.get("entry") or []:
            for change in entry.get("changes") or []:
                value = change.get("value") or {}
                for message in value.get("messages") or []:
                    kind = message.get("type")
                    if kind in wanted and kind not in found and message.get("from"):
                        found[kind] = message
    if "text" not in found:
        raise SystemExit(f"no corpus text message under {corpus} (WHATSAPP_CORPUS_DIR)")
    return [found["text"]] * 6 + [m for k, m in found.items() if k != "text"]


def envelope(messages: list[dict], contacts: list[dict]) -> dict:
    """Meta's ``whatsapp_business_account`` envelope around ``messages``."""
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "102290129340398",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": "551140040000",
                                "phone_number_id": PHONE_NUMBER_ID,
                            },
                            "contacts": contacts,
                            "messages": messages,
                        },
                    }
                ],
            }
        ],
    }


def sign(secret: str, raw: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


@dataclass
class BodyMaker:
    """Signed bodies by index: the same index always gives the same body (customers and types
    from a seeded generator), every message with its own wamid."""

    secret: str
    per_post: int = 1
    customers: int = 8000
    seed: int = 1
    prefix: str = "BENCH"
    count: int = 0  # len(): how many bodies the run sends
    _templates: list[dict] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        if not self._templates:
            self._templates = corpus_messages()

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, i: int) -> tuple[bytes, str]:
        rng = random.Random(self.seed * 1_000_003 + i)
        now = str(int(time.time()))
        messages, contacts = [], []
        for j in range(self.per_post):
            msg = json.loads(json.dumps(rng.choice(self._templates)))
            wa_id = f"55119{rng.randrange(self.customers):08d}"
            msg["from"] = wa_id
            msg["id"] = f"wamid.{self.prefix}{self.seed:04d}{i:08d}{j:03d}"
            msg["timestamp"] = now
            msg.pop("context", None)
            messages.append(msg)
            contacts.append({"profile": {"name": f"Cliente {wa_id[-4:]}"}, "wa_id": wa_id})
        raw = json.dumps(envelope(messages, contacts), separators=(",", ":")).encode()
        return raw, sign(self.secret, raw)


def build_bodies(
    count: int, per_post: int, customers: int, seed: int, secret: str
) -> list[tuple[bytes, str]]:
    """``count`` bodies made in advance (short runs: no body-making on the send path)."""
    maker = BodyMaker(secret, per_post, customers, seed, count=count)
    return [maker[i] for i in range(count)]


# --- load generator ----------------------------------------------------------------------------


def client_process(
    host,
    port,
    bodies,
    rate,
    start_at,
    threads,
    out_queue,
    path="/webhooks/whatsapp/",
    stop_after=None,
):
    """Send every one of ``bodies`` (a list or a ``BodyMaker``) at ``rate`` requests/s, split
    over ``threads`` keep-alive connections; put ``[(scheduled offset s, latency s, status)]``
    on ``out_queue``. Status 0: no answer (connection refused, reset, timeout).

    ``stop_after`` (s after ``start_at``): no request starts later, so a saturated server does
    not stretch the run (what is left unsent is the offered load it could not take; the caller
    counts it from ``len(bodies)``). None: every body is sent, however long it takes.

    A keep-alive connection the server closed between two requests (nginx's
    ``keepalive_requests``) is opened again and the request sent once more, as any HTTP client
    does; only a request that fails on a fresh connection counts as an error.
    """
    interval = threads / rate
    results: list[tuple[float, float, int]] = []
    lock = threading.Lock()
    total = len(bodies)

    def worker(idx: int) -> None:
        conn = http.client.HTTPConnection(host, port, timeout=30)
        fresh = True
        local = []
        offset = idx * (1.0 / rate)
        for n, i in enumerate(range(idx, total, threads)):
            scheduled = start_at + offset + n * interval
            if stop_after is not None and time.perf_counter() > start_at + stop_after:
                break
            raw, sig = bodies[i]
            delay = scheduled - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            status = 0
            for _attempt in range(2):
                try:
                    conn.request(
                        "POST",
                        path,
                        body=raw,
                        headers={"Content-Type": "application/json", "X-Hub-Signature-256": sig},
                    )
                    response = conn.getresponse()
                    response.read()
                    status = response.status
                    fresh = False
                    if response.getheader("Connection", "").lower() == "close":
                        conn.close()
                        conn, fresh = http.client.HTTPConnection(host, port, timeout=30), True
                    break
                except (OSError, http.client.HTTPException):
                    conn.close()
                    conn = http.client.HTTPConnection(host, port, timeout=30)
                    if fresh:
                        break
                    fresh = True
            local.append((scheduled - start_at, time.perf_counter() - scheduled, status))
        conn.close()
        with lock:
            results.extend(local)

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    out_queue.put(results)


def pct(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values``; nan when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# --- /proc --------------------------------------------------------------------------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def proc_children() -> dict[int, list[int]]:
    """Parent pid → live child pids, for every process on the machine."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat(int(entry.name))
        if fields and fields[0] not in ("Z", "X"):
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    return children


def proc_tree(pid: int, children: dict[int, list[int]]) -> list[int]:
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo.extend(children.get(p, ()))
    return tree


def proc_cpu_seconds(pids: list[int]) -> float:
    """utime + stime of each pid plus what its reaped children used (cutime + cstime): the CPU
    of a tree, children that came and went (Celery's ``--max-tasks-per-child``) included."""
    ticks = 0
    for pid in pids:
        fields = _stat(pid)
        if fields:
            ticks += sum(int(x) for x in fields[11:15])
    return ticks / CLOCK_TICKS


def proc_rss_mb(pids: list[int]) -> float:
    kb = 0
    for pid in pids:
        with_fields = _stat(pid)
        if with_fields:
            kb += int(with_fields[21]) * PAGE_KB
    return kb / 1024


# --- agents --------------------------------------------------------------------------------------


def _cookies(response) -> dict[str, str]:
    found = {}
    for header in response.raw.headers.getlist("Set-Cookie"):
        name, _, rest = header.partition("=")
        found[name.strip()] = rest.split(";", 1)[0]
    return found


def log_in(base_url: str, username: str, password: str) -> str:
    """Log in through ``base_url``'s log-in page as a browser does; returns the session key."""
    import requests

    page = requests.get(f"{base_url}/accounts/login/", timeout=20)
    csrf = _cookies(page)["csrftoken"]
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    response = requests.post(
        f"{base_url}/accounts/login/",
        data={"username": username, "password": password, "csrfmiddlewaretoken": token},
        headers={"Cookie": f"csrftoken={csrf}"},
        allow_redirects=False,
        timeout=30,
    )
    if response.status_code != 302:
        raise SystemExit(f"log-in of {username} failed: HTTP {response.status_code}")
    return _cookies(response)["sessionid"]

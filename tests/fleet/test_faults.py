"""The local fleet survives faults: killed workers, Redis and PostgreSQL outages, Meta and Gemini
failing. Every test reports what it sent in and what became of it, and fails on a duplicate or
a loss.

One fleet for the module (``deploy.fleet``: nginx, 2 gunicorn web processes, daphne for /ws/, a
Celery worker per queue, beat, Redis per role, the Graph API simulator) against a **private**
PostgreSQL server (``deploy.fleet.PrivatePostgres``: initdb in a temporary folder, removed at
the end), because one test restarts it; the shared server on 5432 is never touched. Without
the server binaries the fleet uses a database of its own on the configured server and the
restart test is skipped, saying why. Gemini is ``bot.fake_gemini`` in this process; Meta is the
fleet's Graph simulator, scripted over HTTP (``/simulator/api/faults``).

The fleet's timings are shortened so each recovery fits in seconds (same mechanisms, smaller
numbers): ``TIMINGS`` below. Each test prints a line::

    faults[<scenario>]: sent=<in> stored=<distinct> duplicated=0 lost=0 replies=<out> at_meta=<accepted>

``duplicated``: rows beyond one per wamid, plus sends Meta accepted that no stored reply owns (a
reply sent twice). ``lost``: messages not stored, customers' messages the bot never decided,
and replies not accepted by Meta at the end. Both must be 0.

Runs only on PostgreSQL + Redis (CI); every wait is bounded (the slowest, a fleet start, by
240 s on a loaded machine). README "Running as a fleet" → "Faults" has the figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest

from bot.fake_gemini import FakeGemini, slow, unavailable
from deploy.fleet import Fleet, FleetConfig, PrivatePostgres, ensure_database, free_port
from tests.fleet.support import (
    FLEET_SKIP,
    binaries_or_skip,
    create_agent,
    fleet_database_url,
    log_in,
    new_wa_id,
    new_wamid,
    query,
    redis_ports,
    wait_for,
    webhook,
)

pytestmark = [pytest.mark.postgres, pytest.mark.redis, FLEET_SKIP]

GEMINI_KEY = "fleet-fake-gemini-key"
# Production defaults in brackets (ispsupport/settings.py, README "Configuration").
TIMINGS = {
    "WHATSAPP_HTTP_TIMEOUT_SECONDS": "3",  # read timeout of a Graph call [10]
    # A dead worker holds its reply this long [60]. Longer than the PostgreSQL test's outage
    # (10 s, plus the pool's 5 s waits) less the 5 s recording margin: a reply Meta accepted as
    # the database went down is recorded when it returns — what the lease is for — instead of
    # racing the lease's end (then it is sent again: README "Faults", limits).
    "WHATSAPP_CLAIM_LEASE_SECONDS": "25",
    "WHATSAPP_RETRY_BASE_SECONDS": "1",  # backoff base of transient Graph errors [2]
    "WHATSAPP_OUTBOX_SWEEP_AFTER_SECONDS": "10",  # [60]
    "WHATSAPP_SWEEP_INTERVAL_SECONDS": "5",  # the three sweepers' beat interval [60]
    "WHATSAPP_WEBHOOK_SWEEP_AFTER_SECONDS": "30",  # [120]
    "WHATSAPP_FOLLOWUP_SWEEP_AFTER_SECONDS": "30",  # [120]
    "DB_POOL_TIMEOUT_SECONDS": "5",  # wait for a pooled connection (PostgreSQL down) [10]
    "GEMINI_TIMEOUT_SECONDS": "2",  # [8]
    "GEMINI_BREAKER_RESET_SECONDS": "10",  # [60]
    "GEMINI_REQUESTS_PER_MINUTE": "1000",  # the quota is not under test here [120]
}
REPLIED = ("sent", "delivered", "read")


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def private_pg():
    """A PostgreSQL server this module may stop and restart, or None (the reason is kept)."""
    if PrivatePostgres.unavailable():
        yield None
        return
    # A backend whose client died is dropped within a second even while it waits on a lock
    # (otherwise it keeps its row locks until its statement ends): see the kill test.
    server = PrivatePostgres(settings={"client_connection_check_interval": "'1s'"})
    try:
        server.create()
        yield server
    finally:
        server.remove()


@pytest.fixture(scope="module")
def gemini():
    with FakeGemini(api_key=GEMINI_KEY) as fake:
        yield fake


@pytest.fixture(scope="module")
def fleet(tmp_path_factory, private_pg, gemini):
    binaries_or_skip()
    database_url = (
        private_pg.url("ispsupport_faults") if private_pg else fleet_database_url("_faultstest")
    )
    config = FleetConfig(
        database_url=database_url,
        var_dir=tmp_path_factory.mktemp("faults"),
        balancer_port=free_port(),
        graph_port=free_port(),
        redis_ports=redis_ports(),
        web_processes=2,
        web_workers=2,
        ws_processes=1,
        worker_concurrency={"webhooks": 2, "ai": 2, "outbound": 1, "media": 1, "default": 1},
        extra_env={
            "AUTO_ASSIGN": "0",
            "LOG_LEVEL": "INFO",
            "GEMINI_API_KEY": GEMINI_KEY,
            "GEMINI_BASE_URL": gemini.base_url,
            **TIMINGS,
        },
    )
    ensure_database(config.database_url, fresh=True)
    running = Fleet(config)
    running.start(timeout=240)
    # As in production (compose: restart unless-stopped), a process that exits on its own is
    # started again; what a test stops on purpose stays down until it starts it.
    running.supervise()
    try:
        create_agent(running)
        yield running
    finally:
        running.stop(timeout=30)
        if running.restarts:
            print(f"\nfaults: processes restarted by the supervisor: {running.restarts}")


@pytest.fixture(autouse=True)
def _no_faults_left(request):
    """Whatever a test scripted, the next one starts with Meta and Gemini healthy."""
    yield
    if "fleet" in request.fixturenames:
        fleet = request.getfixturevalue("fleet")
        with contextlib.suppress(Exception):
            fleet.graph_faults("DELETE")
        request.getfixturevalue("gemini").set_default(None)


# --- counting ---------------------------------------------------------------------------------


@dataclass
class Sent:
    """What a test posted as Meta: wamid → (wa_id, signed body)."""

    messages: dict[str, tuple[str, bytes]] = field(default_factory=dict)

    def post(self, fleet: Fleet, wa_id: str, text: str, prefix: str) -> tuple[str, int]:
        wamid = new_wamid(prefix)
        body = webhook(wa_id, wamid, text)
        self.messages[wamid] = (wa_id, body)
        try:
            status = fleet.post_webhook(body, timeout=30)
        except OSError:
            status = 0  # no answer: Meta retries as for a 5xx
        return wamid, status

    @property
    def wamids(self) -> list[str]:
        return list(self.messages)

    @property
    def wa_ids(self) -> list[str]:
        return sorted({wa_id for wa_id, _ in self.messages.values()})


@dataclass
class Tally:
    sent: int
    stored: int
    duplicated: int
    lost: int
    replies: int
    at_meta: int
    detail: dict

    def line(self, name: str) -> str:
        extra = " ".join(f"{k}={v}" for k, v in self.detail.items())
        return (
            f"faults[{name}]: sent={self.sent} stored={self.stored} "
            f"duplicated={self.duplicated} lost={self.lost} "
            f"replies={self.replies} at_meta={self.at_meta} {extra}"
        ).rstrip()


def tally(fleet: Fleet, sent: Sent) -> Tally:
    wamids = sent.wamids
    rows = dict(
        query(
            fleet,
            "SELECT wamid, count(*) FROM conversations_message WHERE wamid = ANY(%s) GROUP BY 1",
            [wamids],
        )
    )
    undecided = query(
        fleet,
        "SELECT count(*) FROM conversations_message m WHERE m.wamid = ANY(%s) AND NOT EXISTS "
        "(SELECT 1 FROM bot_botdecision d WHERE d.message_id = m.id)",
        [wamids],
    )[0][0]
    replies = query(
        fleet,
        "SELECT o.wamid, o.status FROM conversations_message o WHERE o.direction = 'out' AND "
        "o.conversation_id IN (SELECT conversation_id FROM conversations_message "
        "WHERE wamid = ANY(%s))",
        [wamids],
    )
    ours = {wamid for wamid, status in replies if wamid}
    accepted = [
        m["wamid"] for wa_id in sent.wa_ids for m in fleet.graph_thread(wa_id) if m["dir"] == "out"
    ]
    unanswered = sum(1 for _, status in replies if status not in REPLIED)
    stored = len(rows)
    duplicated = sum(n - 1 for n in rows.values()) + sum(1 for w in accepted if w not in ours)
    duplicated += len(accepted) - len(set(accepted))
    lost = (len(wamids) - stored) + undecided + unanswered
    return Tally(
        sent=len(wamids),
        stored=stored,
        duplicated=duplicated,
        lost=lost,
        replies=len(replies),
        at_meta=len(accepted),
        detail={"undecided": undecided, "replies_not_accepted": unanswered},
    )


def settle(fleet: Fleet, sent: Sent, name: str, timeout: float) -> Tally:
    """Wait until nothing is lost (bounded), then once more: a late second send would show."""
    deadline = time.monotonic() + timeout
    result = tally(fleet, sent)
    while result.lost and time.monotonic() < deadline:
        time.sleep(1.0)
        result = tally(fleet, sent)
    time.sleep(3.0)
    result = tally(fleet, sent)
    print(f"\n{result.line(name)}", flush=True)
    assert result.duplicated == 0, result.line(name)
    assert result.lost == 0, result.line(name)
    assert result.stored == result.sent
    return result


def log_lines(fleet: Fleet, name: str) -> str:
    return Path(fleet.processes[name].log).read_text(errors="replace")


def decisions(fleet: Fleet, wamids: list[str]) -> list[tuple]:
    """(wamid, action, rule, engine, fallback_reason, conversation state) per message."""
    return query(
        fleet,
        "SELECT m.wamid, d.action, d.rule, d.engine, d.fallback_reason, c.state "
        "FROM conversations_message m JOIN bot_botdecision d ON d.message_id = m.id "
        "JOIN conversations_conversation c ON c.id = m.conversation_id WHERE m.wamid = ANY(%s)",
        [wamids],
    )


def wait_decided(fleet: Fleet, wamids: list[str], timeout: float, what: str) -> list[tuple]:
    return wait_for(
        lambda: (found := decisions(fleet, wamids)) and len(found) == len(wamids) and found,
        timeout,
        what,
    )


def blocked_by(fleet: Fleet, pid: int) -> set[int]:
    """Backends waiting for a lock held by backend ``pid``."""
    rows = query(
        fleet, "SELECT pid FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))", [pid]
    )
    return {row[0] for row in rows}


# --- a Celery worker killed mid-task ----------------------------------------------------------


def test_a_webhooks_worker_killed_mid_batch_redelivers_it_and_stores_each_message_once(
    fleet, private_pg
):
    """SIGKILL to the pool processes of ``worker-webhooks`` while one drains a batch.

    The kill is pinned: the batch waits on a conversation row this test holds locked, so the
    pool process is inside the batch's transaction (event rows claimed, earlier messages
    written, nothing committed) when it dies. The worker's main process sees it die and, with
    acks late and reject-on-worker-lost, puts the task back; a new pool process takes the same
    task and reaches the same row. Then the lock is released.
    """
    sent = Sent()
    regular = new_wa_id()
    first, status = sent.post(fleet, regular, "oi", "KILLW")
    assert status == 200
    wait_decided(fleet, [first], 60, "the regular customer's first message decided")
    ((conversation_id,),) = query(
        fleet, "SELECT conversation_id FROM conversations_message WHERE wamid = %s", [first]
    )
    # Quiet first: the replies delivered and their statuses applied (they touch the same row).
    wait_for(
        lambda: query(
            fleet,
            "SELECT count(*) = 0 FROM conversations_message WHERE conversation_id = %s "
            "AND direction = 'out' AND status NOT IN ('delivered', 'read')",
            [conversation_id],
        )[0][0],
        60,
        "the first replies delivered",
    )

    with psycopg.connect(fleet.config.database_url, connect_timeout=5) as locker:
        locker.execute(
            "SELECT id FROM conversations_conversation WHERE id = %s FOR UPDATE", [conversation_id]
        )
        holder = locker.info.backend_pid
        batch = []
        for wa_id, text in (
            (new_wa_id(), "boa tarde"),
            (regular, "oi de novo"),
            (new_wa_id(), "bom dia"),
        ):
            wamid, status = sent.post(fleet, wa_id, text, "KILLW")
            assert status == 200
            batch.append(wamid)
        waiting = wait_for(
            lambda: blocked_by(fleet, holder), 30, "the batch waiting on the conversation row"
        )
        received_before = _task_ids_received(fleet, "whatsapp.process_pending_webhook_events")

        killed = fleet.kill_pool_processes("worker-webhooks")
        assert killed, "worker-webhooks has no pool processes to kill"
        if private_pg is None:
            # Without client_connection_check_interval (the shared server's settings are not
            # ours) the dead client's backend would wait for the lock: end it as PG would.
            for pid in waiting:
                query(fleet, "SELECT pg_terminate_backend(%s)", [pid])
        wait_for(
            lambda: not waiting & blocked_by(fleet, holder),
            30,
            "PostgreSQL dropping the killed process's backend (its transaction rolled back)",
        )
        again = wait_for(
            lambda: blocked_by(fleet, holder) - waiting,
            60,
            "the task redelivered to a new pool process, waiting on the same row",
        )
        assert not set(fleet.pool_processes("worker-webhooks")) & set(killed)
        stored_meanwhile = query(
            fleet, "SELECT count(*) FROM conversations_message WHERE wamid = %s", [batch[1]]
        )[0][0]
        assert stored_meanwhile == 0  # the killed transaction left nothing behind
        locker.rollback()

    redelivered = [
        task_id
        for task_id, count in Counter(
            _task_ids_received(fleet, "whatsapp.process_pending_webhook_events")
        ).items()
        if count > 1 and task_id in received_before
    ]
    assert redelivered, "the worker log shows no task received twice (acks late, requeued)"
    settle(fleet, sent, "webhooks worker SIGKILL mid-batch", 90)
    print(
        f"faults[webhooks worker SIGKILL mid-batch]: killed_pool_processes={len(killed)} "
        f"redelivered_tasks={len(redelivered)} new_backends_waiting={len(again)}"
    )


def _task_ids_received(fleet: Fleet, task: str) -> list[str]:
    pattern = re.compile(rf"Task {re.escape(task)}\[([0-9a-f-]+)\] received")
    return pattern.findall(log_lines(fleet, "worker-webhooks"))


def test_an_outbound_worker_killed_mid_send_sends_the_reply_once_after_restart(fleet):
    """SIGKILL to the whole ``worker-outbound`` (its process group: a crashed host) while a
    reply is in flight to Meta, then a restart.

    Pinned before Meta accepts: the Graph simulator holds every send (a slow Meta) longer than
    the client waits, and a held send whose client went away is never accepted. So at the kill
    Meta has accepted nothing; the task is not redelivered (the main process died too: the
    broker returns it only after its visibility timeout, an hour) and the outbox sweeper sends
    the reply once the dead worker's lease expires. The window this test stays out of —
    killed after Meta accepted and before the wamid was stored — sends twice: README "Faults".
    """
    sent = Sent()
    fleet.graph_faults("POST", {"kind": "hold", "seconds": 60, "for_seconds": 120})
    wamid, status = sent.post(fleet, new_wa_id(), "oi, boa noite", "KILLO")
    assert status == 200
    wait_for(lambda: fleet.graph_faults()["held"] >= 1, 60, "a reply in flight to Meta")

    how = fleet.stop_process("worker-outbound", timeout=15, sig=signal.SIGKILL, group=True)
    killed_at = time.monotonic()
    fleet.graph_faults("DELETE")
    assert how in ("stopped", "killed")
    accepted = [m for wa_id in sent.wa_ids for m in fleet.graph_thread(wa_id) if m["dir"] == "out"]
    assert accepted == [], "Meta accepted a send before the kill: not pinned before acceptance"
    pending = query(
        fleet,
        "SELECT count(*) FROM conversations_message WHERE direction = 'out' AND status = "
        "'pending' AND conversation_id = (SELECT conversation_id FROM conversations_message "
        "WHERE wamid = %s)",
        [wamid],
    )[0][0]
    assert pending >= 1

    fleet.start_process("worker-outbound", timeout=90)
    result = settle(fleet, sent, "outbound worker SIGKILL mid-send", 120)
    assert "outbox: re-dispatched stale messages" in log_lines(fleet, "worker-default")
    print(
        f"faults[outbound worker SIGKILL mid-send]: pending_at_kill={pending} "
        f"delivered_after_s={time.monotonic() - killed_at:.0f} (lease "
        f"{TIMINGS['WHATSAPP_CLAIM_LEASE_SECONDS']} s, then the outbox sweeper) "
        f"at_meta={result.at_meta}"
    )


# --- Meta and Gemini failing ------------------------------------------------------------------


def _answered(fleet: Fleet) -> Counter:
    return Counter(fleet.graph_faults()["answered"].get("messages", {}))


def test_meta_and_gemini_failing_replies_arrive_after_recovery_once_and_people_take_over(
    fleet, gemini
):
    """Meta answers 500, then 429 (code 130429, Retry-After), then nothing (timeouts), while
    two customers write: their replies are retried with backoff and delivered once, after.
    Then Gemini times out and answers 503 while three more write: no decision uses the model;
    the turn that met the failures goes to people ("model unavailable"), and once the shared
    breaker is open the rule-based classifier decides (README "Bot": the designed fallback; it
    hands over what it cannot answer). Then both are back: a customer's turn uses the model
    again and is answered."""
    sent = Sent()
    start = _answered(fleet)

    # Meta down, one failure mode after the other, each until a send has met it.
    fleet.graph_faults("POST", {"kind": "http", "status": 500, "for_seconds": 120})
    meta_down = []
    for text in ("estou sem internet desde ontem", "quero a segunda via do boleto"):
        wamid, status = sent.post(fleet, new_wa_id(), text, "META")
        assert status == 200
        meta_down.append(wamid)
    phases = (
        ("500", None),
        ("429", {"kind": "error", "code": 130429, "status": 429, "retry_after": 2}),
        ("0", {"kind": "timeout", "seconds": 30}),  # "0": never answered (the client gave up)
    )
    for answered_as, fault in phases:
        baseline = start[answered_as] if fault is None else _answered(fleet)[answered_as]
        if fault is not None:  # the latest window wins: no gap between failure modes
            fleet.graph_faults("POST", {**fault, "for_seconds": 120})
        wait_for(
            lambda a=answered_as, b=baseline: _answered(fleet)[a] > b,
            60,
            f"a reply refused by Meta with {answered_as}",
        )
    fleet.graph_faults("DELETE")
    refused = _answered(fleet) - start
    assert refused["500"] >= 1 and refused["429"] >= 1 and refused["0"] >= 1, refused

    # Gemini down: one timeout, then 503 for everything. The first customer's turn meets the
    # failures itself (a timeout, then 503 on both retries): a person takes over.
    calls_before = len(gemini.requests)
    gemini.queue(slow(8))
    gemini.set_default(unavailable())
    model_down = []
    wamid, status = sent.post(fleet, new_wa_id(), "minha internet está muito lenta", "GEMINI")
    assert status == 200
    model_down.append(wamid)
    ((*_, action, rule, engine, _, state),) = wait_decided(
        fleet, model_down, 90, "the first decision while Gemini is down"
    )
    assert (action, rule, engine, state) == ("escalated", "model_unavailable", "rules", "waiting")
    # Two more while it is still down: their failures open the shared breaker (5 without a
    # success), after which the rule-based classifier decides without calling the model.
    for text in ("o wifi não conecta", "quero mudar de plano"):
        wamid, status = sent.post(fleet, new_wa_id(), text, "GEMINI")
        assert status == 200
        model_down.append(wamid)
    decided = wait_decided(fleet, model_down, 120, "the decisions while Gemini is down")
    failed_calls = len(gemini.requests) - calls_before
    gemini.set_default(None)
    assert all(d[3] != "gemini" for d in decided), decided
    to_people = [d for d in decided if d[1] == "escalated" and d[2] == "model_unavailable"]
    by_rules = [d for d in decided if d[4] == "breaker_open"]
    assert len(to_people) + len(by_rules) == len(decided), decided
    assert all(d[5] == "waiting" for d in to_people)

    # Both back (after the breaker's reset time): the model decides again, Meta accepts.
    time.sleep(float(TIMINGS["GEMINI_BREAKER_RESET_SECONDS"]) + 1)
    wamid, status = sent.post(fleet, new_wa_id(), "boa tarde, minha conexão caiu", "BACK")
    assert status == 200
    ((*_, engine, _, _),) = wait_decided(fleet, [wamid], 60, "a decision after recovery")
    assert engine == "gemini"

    result = settle(fleet, sent, "Meta 500/429/timeouts + Gemini 503/timeouts", 150)
    print(
        f"faults[Meta 500/429/timeouts + Gemini 503/timeouts]: meta_refused="
        f"{dict(refused)} gemini_failed_calls={failed_calls} to_people={len(to_people)} "
        f"rules_breaker_open={len(by_rules)} after_recovery_engine={engine} "
        f"at_meta={result.at_meta}"
    )


# --- Redis stopped ----------------------------------------------------------------------------


class ConsoleSocket:
    """An agent's console socket through nginx, behaving like ``static/console/console.js``:
    on close it reconnects with backoff and resumes from the last sequence it saw; it sends a
    heartbeat every 20 s. Runs its own event loop in a thread."""

    def __init__(self, fleet: Fleet, session: str) -> None:
        self.url = f"{fleet.ws_url}/ws/console/"
        self.headers = {"Cookie": f"sessionid={session}", "Origin": fleet.url}
        self.last_seq = 0
        self.connects = 0
        self.closes: list[str] = []
        self.live: list[tuple[float, dict]] = []  # (monotonic time, event) pushed live
        self.caught_up: list[dict] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    def start(self) -> ConsoleSocket:
        self._thread.start()
        wait_for(lambda: self.connects and self.last_seq, 30, "the console socket ready")
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(15)

    async def _run(self) -> None:
        import websockets

        retries = 0
        while not self._stop.is_set():
            try:
                async with websockets.connect(
                    self.url, additional_headers=self.headers, open_timeout=10
                ) as ws:
                    self.connects += 1
                    retries = 0
                    if self.last_seq:
                        await ws.send(json.dumps({"type": "resume", "since": self.last_seq}))
                    beat = 0.0
                    while not self._stop.is_set():
                        if time.monotonic() - beat >= 20:
                            await ws.send(json.dumps({"type": "heartbeat", "state": "online"}))
                            beat = time.monotonic()
                        try:
                            raw = await asyncio.wait_for(ws.recv(), 0.5)
                        except TimeoutError:
                            continue
                        self._receive(json.loads(raw))
            except Exception as exc:  # closed by the server, refused while it restarts…
                self.closes.append(type(exc).__name__)
            retries += 1
            await asyncio.sleep(min(5.0, 0.5 * 2**retries))

    def _receive(self, message: dict) -> None:
        if message.get("type") == "ready" and not self.last_seq:
            self.last_seq = message["seq"]  # what the page was rendered with
        elif message.get("type") == "event":
            self.live.append((time.monotonic(), message))
            self.last_seq = max(self.last_seq, message.get("seq") or 0)
        elif message.get("type") == "catchup":
            for event in message["events"]:
                self.caught_up.append(event)
                self.last_seq = max(self.last_seq, event.get("seq") or 0)


def catch_up(fleet: Fleet, session: str, since: int) -> dict:
    """What a console that reconnects now asks for: the events after ``since``."""

    async def ask() -> dict:
        import websockets

        async with websockets.connect(
            f"{fleet.ws_url}/ws/console/",
            additional_headers={"Cookie": f"sessionid={session}", "Origin": fleet.url},
            open_timeout=15,
        ) as ws:
            await ws.send(json.dumps({"type": "resume", "since": since}))
            while True:
                message = json.loads(await asyncio.wait_for(ws.recv(), 15))
                if message.get("type") == "catchup":
                    return message

    return asyncio.run(ask())


def test_redis_stopped_for_30_s_under_load_loses_nothing_and_live_updates_resume(fleet):
    """All three Redis roles stopped (SIGTERM) for 30 s while customers write at about 2 per
    second: the webhook keeps answering 200 and storing to PostgreSQL; after Redis returns the
    sweepers dispatch what was left (events, bot turns, replies), every customer is answered
    once, the agent's socket hears new events live again and a reconnecting console catches up
    on everything it missed."""
    import hashlib

    session = log_in(fleet)
    socket_ = ConsoleSocket(fleet, session).start()
    seq_before = socket_.last_seq
    sent = Sent()
    answers: list[tuple[float, int, float, str]] = []  # (monotonic, status, seconds, wamid)
    stop_load = threading.Event()

    def load() -> None:
        texts = ("oi, estou sem internet", "minha fatura veio errada", "a conexão está lenta")
        i = 0
        while not stop_load.is_set():
            began = time.monotonic()
            wamid, status = sent.post(fleet, new_wa_id(), texts[i % 3], "REDIS")
            answers.append((began, status, time.monotonic() - began, wamid))
            i += 1
            stop_load.wait(max(0.0, 0.5 - (time.monotonic() - began)))

    loader = threading.Thread(target=load, daemon=True)
    loader.start()
    try:
        time.sleep(5)
        down_at = time.monotonic()
        for role in ("cache", "broker", "channels"):
            assert fleet.stop_process(f"redis-{role}", timeout=20) == "stopped"
        time.sleep(max(0.0, 30 - (time.monotonic() - down_at)))
        during = [a for a in answers if a[0] >= down_at]
        # Acknowledged means stored: look for each acknowledged body before Redis is back.
        acknowledged = [
            hashlib.sha256(sent.messages[wamid][1]).hexdigest()
            for _, status, _, wamid in list(answers)
            if status == 200
        ]
        ((stored_while_down,),) = query(
            fleet,
            "SELECT count(DISTINCT body_sha256) FROM whatsapp_webhookevent "
            "WHERE body_sha256 = ANY(%s)",
            [acknowledged],
        )
        for role in ("cache", "broker", "channels"):
            fleet.start_process(f"redis-{role}", timeout=30)
        back_at = time.monotonic()
    finally:
        stop_load.set()
        loader.join(30)

    assert len(during) >= 30, f"only {len(during)} webhooks posted while Redis was down"
    assert all(a[1] == 200 for a in answers), Counter(a[1] for a in answers)
    assert stored_while_down == len(acknowledged), "acknowledged but not stored"

    result = settle(fleet, sent, "Redis stopped 30 s under load", 240)

    live_after = wait_for(
        lambda: [e for t, e in socket_.live if t > back_at and e["kind"] == "message.new"],
        60,
        "a live message.new on the agent's socket after Redis returned",
    )
    socket_.stop()
    conversations = {
        row[0]
        for row in query(
            fleet,
            "SELECT conversation_id FROM conversations_message WHERE wamid = ANY(%s)",
            [sent.wamids],
        )
    }
    caught = catch_up(fleet, session, seq_before)
    if caught["resync"]:
        # More than CONSOLE_CATCH_UP_MAX_EVENTS missed: the console is told to reload its lists
        # (console.js resyncAll). The stored events it would have replayed still announce every
        # conversation to this agent's groups (no team: console.noteam).
        catch_up_kind = "resync"
        heard = {
            row[0]
            for row in query(
                fleet,
                "SELECT DISTINCT conversation_id FROM conversations_liveevent WHERE id > %s "
                "AND kind = 'message.new' AND audience LIKE %s",
                [seq_before, "% console.noteam %"],
            )
        }
    else:
        catch_up_kind = f"{len(caught['events'])} events"
        heard = {e["conversation_id"] for e in caught["events"] if e["kind"] == "message.new"}
    assert conversations <= heard, f"{len(conversations - heard)} conversations never announced"
    slowest = max(a[2] for a in answers)
    print(
        f"faults[Redis stopped 30 s under load]: posted_while_down={len(during)} "
        f"all_answered=200 slowest_ack_s={slowest:.2f} socket_connects={socket_.connects} "
        f"live_after_return={len(live_after)} catch_up={catch_up_kind} "
        f"announced={len(conversations & heard)}/{len(conversations)} at_meta={result.at_meta} "
        f"restarted_by_supervisor={[r['name'] for r in fleet.restarts]}"
    )


# --- PostgreSQL restarted ---------------------------------------------------------------------


def test_postgresql_restarted_the_webhook_answers_5xx_meanwhile_and_meta_retries_store_once(
    fleet, private_pg
):
    """The fleet's PostgreSQL stopped (fast shutdown: every connection dropped) for about ten
    seconds and started again. Webhooks posted meanwhile are refused with 5xx, so Meta keeps
    them and retries; after the restart every retried event (and one Meta sends again after
    it was accepted) is stored exactly once and answered."""
    if private_pg is None:
        pytest.skip(f"no private PostgreSQL to restart: {PrivatePostgres.unavailable()}")
    sent = Sent()
    warm = []
    for _ in range(2):
        wamid, status = sent.post(fleet, new_wa_id(), "oi, tudo bem?", "PGW")
        assert status == 200
        warm.append(wamid)
    wait_decided(fleet, warm, 60, "the first customers decided")

    private_pg.stop("fast")
    down_at = time.monotonic()
    refused: dict[str, int] = {}

    def post_one(text: str) -> None:
        wamid, status = sent.post(fleet, new_wa_id(), text, "PGDOWN")
        refused[wamid] = status

    posters = [
        threading.Thread(target=post_one, args=(text,))
        for text in ("oi", "sem internet", "quero meu boleto", "internet lenta")
    ]
    for poster in posters:
        poster.start()
    for poster in posters:
        poster.join(60)
    assert len(refused) == 4
    assert all(500 <= status <= 599 for status in refused.values()), refused
    time.sleep(max(0.0, 10 - (time.monotonic() - down_at)))
    private_pg.start()
    up_at = time.monotonic()

    # Meta retries each refused delivery with backoff, and may deliver an accepted one again.
    retries = 0
    pending = dict.fromkeys(refused)
    delay = 1.0
    deadline = time.monotonic() + 90
    while pending and time.monotonic() < deadline:
        time.sleep(delay)
        for wamid in list(pending):
            retries += 1
            if fleet.post_webhook(sent.messages[wamid][1], timeout=30) == 200:
                del pending[wamid]
        delay = min(delay * 2, 8.0)
    assert not pending, f"{len(pending)} events still refused 90 s after the restart"
    accepted_after = time.monotonic() - up_at
    assert fleet.post_webhook(sent.messages[warm[0]][1]) == 200

    result = settle(fleet, sent, "PostgreSQL restarted", 150)
    print(
        f"faults[PostgreSQL restarted]: refused_while_down={len(refused)} "
        f"statuses={sorted(set(refused.values()))} meta_retries={retries} "
        f"all_accepted_after_restart_s={accepted_after:.0f} at_meta={result.at_meta}"
    )

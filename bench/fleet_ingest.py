"""Webhook ingest at the real peak on the whole local fleet (README "Measured at scale").

Starts ``deploy.fleet`` (nginx, gunicorn web processes, daphne, one Celery worker per queue,
beat, a Redis per role, the Graph API simulator) against a PostgreSQL database of its own,
logs a few agents in and opens their console sockets through nginx, then offers signed
webhooks through nginx at ``--rate`` messages/s for ``--duration`` s (open loop, 8,000
customers, corpus-like bodies, one message per POST unless ``--messages-per-post``) while a
sampler posts a few more single-message webhooks whose arrival on the agents' sockets it times.
Prints:

- acknowledged messages/s, acknowledgement latency p50/p90/p99/max, errors (by status);
- processing lag over time: webhook events not processed yet and the age of the oldest, stored
  messages, the Celery queues' lengths; the time to drain after the load stops (bounded by
  ``--drain-timeout``: then the backlog left and the time it would need at the drain rate);
- webhook → agent screen: from the start of a sample's POST to ``message.new`` on each socket;
- CPU seconds (during load + drain) and peak RSS per fleet process and per role, read from
  /proc for every pid of the fleet's state and their children; the load generator's own CPU;
- the database's size growth, and per million messages stored.

Usage (what README reports; run it under ``flock /work/bench.lock``)::

    .venv/bin/python bench/fleet_ingest.py --duration 300
    .venv/bin/python bench/fleet_ingest.py --duration 300 --messages-per-post 5

``FLEET_BENCH_DATABASE_URL`` (default ``postgres://postgres@127.0.0.1:5432/ispsupport_fleetbench``)
is dropped and created again (a new fleet has new encryption keys); the fleet's Redis servers
take free ports in 6394-6399 (``make prod-local`` uses 6391-6393), its files ``var/fleetbench``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import random
import re
import socket
import statistics
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.loadgen import (  # noqa: E402
    BodyMaker,
    client_process,
    envelope,
    log_in,
    pct,
    proc_children,
    proc_cpu_seconds,
    proc_rss_mb,
    proc_tree,
    sign,
)
from deploy.fleet import Fleet, FleetConfig, ensure_database, free_port, running  # noqa: E402

DATABASE_URL = os.environ.get(
    "FLEET_BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/ispsupport_fleetbench"
)
AGENT_PASSWORD = "fleetbench-agente-2026"
MESSAGE_ID = re.compile(r'"message_id": (\d+)')


def redis_ports() -> dict[str, int]:
    ports: list[int] = []
    for port in range(6394, 6400):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        ports.append(port)
        if len(ports) == 3:
            return dict(zip(("cache", "broker", "channels"), ports, strict=True))
    raise SystemExit("no three free ports in 6394-6399 for the fleet's Redis servers")


def query(sql: str, params: list | tuple = (), url: str = "") -> list[tuple]:
    import psycopg

    with psycopg.connect(url or DATABASE_URL, connect_timeout=5) as conn:
        return conn.execute(sql, params).fetchall()


def create_agents(fleet: Fleet, count: int) -> list[str]:
    names = [f"fleetbench{i:02d}" for i in range(count)]
    fleet.manage(
        "shell",
        "-c",
        "from django.contrib.auth.models import Group\n"
        "from accounts.models import User\n"
        "group = Group.objects.get(name='agent')\n"
        f"for name in {names!r}:\n"
        "    u, _ = User.objects.get_or_create(username=name, defaults={'email': name + '@example.test'})\n"
        f"    u.set_password({AGENT_PASSWORD!r})\n"
        "    u.save()\n"
        "    u.groups.add(group)\n",
    )
    return names


# --- the agents' screens (a process of its own: they hear every event of the fleet) ----------


def screens_process(ws_url: str, origin: str, sessions: list[str], control, out) -> None:
    """Open one console socket per session, as console.js does (heartbeat every 20 s); record the
    first arrival (time.monotonic, shared by every process) of each ``message.new`` by
    message id. When ``control`` yields the sample message ids, put their arrivals on ``out``."""
    import websockets

    arrivals: list[dict[int, float]] = [{} for _ in sessions]
    frames = [0] * len(sessions)
    stop = asyncio.Event()

    async def one(idx: int, session: str) -> None:
        async with websockets.connect(
            f"{ws_url}/ws/console/",
            additional_headers={"Cookie": f"sessionid={session}", "Origin": origin},
            open_timeout=30,
            max_queue=None,
        ) as ws:
            seen = arrivals[idx]

            async def heartbeat() -> None:
                while True:
                    await asyncio.sleep(20)
                    await ws.send('{"type": "heartbeat", "state": "online"}')

            beat = asyncio.create_task(heartbeat())
            try:
                while not stop.is_set():
                    try:
                        text = await asyncio.wait_for(ws.recv(), 1.0)
                    except TimeoutError:
                        continue
                    now = time.monotonic()
                    frames[idx] += 1
                    if '"message.new"' in text:
                        found = MESSAGE_ID.search(text)
                        if found:
                            seen.setdefault(int(found.group(1)), now)
            finally:
                beat.cancel()

    async def main() -> None:
        tasks = [asyncio.create_task(one(i, s)) for i, s in enumerate(sessions)]
        loop = asyncio.get_running_loop()
        out.put(("ready", None))
        wanted = await loop.run_in_executor(None, control.get)
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        out.put(
            (
                "arrivals",
                {
                    "frames": frames,
                    "by_socket": [{m: seen[m] for m in wanted if m in seen} for seen in arrivals],
                },
            )
        )

    asyncio.run(main())


# --- samplers --------------------------------------------------------------------------------


class Sampler(threading.Thread):
    """Posts one single-text webhook every ``1/rate`` s through the balancer; ``sent`` maps each
    wamid to the monotonic time its POST started (only acknowledged ones are kept)."""

    def __init__(self, fleet: Fleet, rate: float, customers: int) -> None:
        super().__init__(daemon=True)
        self.fleet, self.interval, self.customers = fleet, 1.0 / rate, customers
        self.sent: dict[str, float] = {}
        self.stop_event = threading.Event()
        self.run_id = uuid.uuid4().hex[:8].upper()

    def run(self) -> None:
        rng = random.Random(7)
        secret = self.fleet.env["WHATSAPP_APP_SECRET"]
        n = 0
        next_at = time.monotonic()
        while not self.stop_event.is_set():
            wa_id = f"55119{rng.randrange(self.customers):08d}"
            wamid = f"wamid.SAMPLE{self.run_id}{n:06d}"
            message = {
                "from": wa_id,
                "id": wamid,
                "timestamp": str(int(time.time())),
                "type": "text",
                "text": {"body": "Continuo sem internet aqui"},
            }
            raw = envelope([message], [{"profile": {"name": "Cliente"}, "wa_id": wa_id}])
            body = json.dumps(raw, separators=(",", ":")).encode()
            started = time.monotonic()
            try:
                status = self._post(body, sign(secret, body))
            except OSError:
                status = 0
            if status == 200:
                self.sent[wamid] = started
            n += 1
            next_at += self.interval
            self.stop_event.wait(max(0.0, next_at - time.monotonic()))

    def _post(self, body: bytes, signature: str) -> int:
        import http.client

        conn = http.client.HTTPConnection(
            self.fleet.config.host, self.fleet.config.balancer_port, timeout=30
        )
        try:
            conn.request(
                "POST",
                "/webhooks/whatsapp/",
                body=body,
                headers={"Content-Type": "application/json", "X-Hub-Signature-256": signature},
            )
            response = conn.getresponse()
            response.read()
            return response.status
        finally:
            conn.close()


class Monitor(threading.Thread):
    """Every ``interval`` s: the webhook events still to process and the oldest one's age, the
    messages stored, the Celery queues' lengths, and each fleet process tree's RSS (peak kept)."""

    def __init__(self, fleet: Fleet, interval: float, t0: float) -> None:
        super().__init__(daemon=True)
        self.fleet, self.interval, self.t0 = fleet, interval, t0
        self.rows: list[dict] = []
        self.peak_rss: dict[str, float] = {}
        self.peak_role_rss: dict[str, float] = {}
        self.stop_event = threading.Event()
        import redis

        self.broker = redis.Redis.from_url(fleet.redis_url("broker"))

    def sample(self) -> dict:
        (pending, oldest, stored), *_ = query(
            "SELECT (SELECT count(*) FROM whatsapp_webhookevent WHERE status = 'received'),"
            " (SELECT extract(epoch FROM now() - min(received_at)) FROM whatsapp_webhookevent"
            "   WHERE status = 'received'),"
            " (SELECT count(*) FROM conversations_message WHERE direction = 'in')"
        )
        queues = {}
        for q in ("webhooks", "ai", "outbound"):
            with contextlib.suppress(Exception):
                queues[q] = self.broker.llen(q)
        row = {
            "t": time.monotonic() - self.t0,
            "pending": pending,
            "oldest": float(oldest or 0.0),
            "stored": stored,
            **queues,
        }
        children = proc_children()
        role_rss: dict[str, float] = {}
        for name, process in self.fleet.processes.items():
            rss = proc_rss_mb(proc_tree(process.pid, children))
            self.peak_rss[name] = max(self.peak_rss.get(name, 0.0), rss)
            role = process.spec.role if process.spec.role != "worker" else name
            role_rss[role] = role_rss.get(role, 0.0) + rss
        for role, rss in role_rss.items():
            self.peak_role_rss[role] = max(self.peak_role_rss.get(role, 0.0), rss)
        return row

    def run(self) -> None:
        while not self.stop_event.is_set():
            with contextlib.suppress(Exception):
                self.rows.append(self.sample())
            self.stop_event.wait(self.interval)


def cpu_by_process(fleet: Fleet) -> dict[str, float]:
    children = proc_children()
    return {
        name: proc_cpu_seconds(proc_tree(p.pid, children)) for name, p in fleet.processes.items()
    }


def database_size() -> tuple[int, dict[str, int]]:
    (total,), *_ = query("SELECT pg_database_size(current_database())")
    tables = dict(
        query(
            "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'public' AND c.relkind = 'r'"
        )
    )
    return total, tables


def fresh_var_dir(var_dir: Path) -> None:
    """A fresh database needs fresh keys, and an empty broker: the broker's append-only file
    would otherwise hand the new fleet the tasks an interrupted run left queued."""
    import shutil

    (var_dir / "secrets.json").unlink(missing_ok=True)
    shutil.rmtree(var_dir / "redis", ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=1333.0, help="offered messages per second")
    parser.add_argument("--duration", type=float, default=300.0, help="seconds of load")
    parser.add_argument(
        "--messages-per-post",
        type=int,
        default=1,
        help="Meta-style batching: messages per POST (default 1, the honest worst case)",
    )
    parser.add_argument("--customers", type=int, default=8000)
    parser.add_argument("--agents", type=int, default=3, help="console sockets through nginx")
    parser.add_argument("--sample-rate", type=float, default=2.0, help="timed samples per second")
    parser.add_argument("--web-processes", type=int, default=2)
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn workers per process")
    parser.add_argument("--webhooks-concurrency", type=int, default=2)
    parser.add_argument("--client-processes", type=int, default=2)
    parser.add_argument("--client-threads", type=int, default=32, help="per client process")
    parser.add_argument("--interval", type=float, default=5.0, help="lag sampling period, s")
    parser.add_argument("--drain-timeout", type=float, default=180.0)
    parser.add_argument("--keep-database", action="store_true", help="do not drop it at the end")
    args = parser.parse_args()

    ensure_database(DATABASE_URL, fresh=True)
    config = FleetConfig(
        database_url=DATABASE_URL,
        var_dir=ROOT / "var" / "fleetbench",
        balancer_port=free_port(),
        graph_port=free_port(),
        redis_ports=redis_ports(),
        web_processes=args.web_processes,
        web_workers=args.web_workers,
        ws_processes=1,
        worker_concurrency={
            "webhooks": args.webhooks_concurrency,
            "ai": 1,
            "outbound": 1,
            "media": 1,
            "default": 1,
        },
    )
    fresh_var_dir(config.var_dir)
    started = time.monotonic()
    with running(config) as fleet:
        print(f"fleet up in {time.monotonic() - started:.0f} s at {fleet.url}")
        try:
            run(fleet, args)
        finally:
            print("stopping the fleet…", flush=True)
    if not args.keep_database:
        import psycopg

        admin = DATABASE_URL.rsplit("/", 1)[0] + "/postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE_URL.rsplit("/", 1)[1]}" WITH (FORCE)')


def run(fleet: Fleet, args: argparse.Namespace) -> None:
    names = create_agents(fleet, args.agents)
    sessions = [log_in(fleet.url, name, AGENT_PASSWORD) for name in names]
    control: mp.Queue = mp.Queue()
    screens_out: mp.Queue = mp.Queue()
    screens = mp.Process(
        target=screens_process, args=(fleet.ws_url, fleet.url, sessions, control, screens_out)
    )
    screens.start()
    screens_out.get(timeout=60)
    time.sleep(2)  # sockets connected and joined
    size_before, tables_before = database_size()
    print(f"load average before: {os.getloadavg()}")

    posts = int(args.rate * args.duration / args.messages_per_post)
    post_rate = args.rate / args.messages_per_post
    maker = BodyMaker(
        fleet.env["WHATSAPP_APP_SECRET"],
        args.messages_per_post,
        args.customers,
        seed=os.getpid() % 9999,
        count=posts,
    )
    shares = [_Share(maker, p, args.client_processes, posts) for p in range(args.client_processes)]
    t0 = time.monotonic()
    cpu_before = cpu_by_process(fleet)
    own_before = os.times()
    monitor = Monitor(fleet, args.interval, t0)
    monitor.start()
    sampler = Sampler(fleet, args.sample_rate, args.customers)
    results_q: mp.Queue = mp.Queue()
    start_at = time.perf_counter() + 1.0
    clients = [
        mp.Process(
            target=client_process,
            args=(
                fleet.config.host,
                fleet.config.balancer_port,
                share,
                post_rate / args.client_processes,
                start_at,
                args.client_threads,
                results_q,
                "/webhooks/whatsapp/",
                args.duration + 2.0,
            ),
        )
        for share in shares
    ]
    for c in clients:
        c.start()
    sampler.start()
    print(
        f"offering {args.rate:.0f} msg/s ({post_rate:.0f} POST/s, {args.messages_per_post}/POST) "
        f"for {args.duration:.0f} s through nginx; {args.agents} agent sockets",
        flush=True,
    )
    results = []
    for _ in clients:
        results.extend(results_q.get())
    for c in clients:
        c.join()
    load_end = time.monotonic()
    sampler.stop_event.set()
    sampler.join()
    wall = time.perf_counter() - start_at
    uptime_at_end = os.getloadavg()

    # Drain: until every acknowledged message is stored.
    ok = [lat for _at, lat, status in results if status == 200]
    acked = len(ok) * args.messages_per_post + len(sampler.sent)
    drained_at = None
    while time.monotonic() - load_end < args.drain_timeout:
        row = monitor.sample()
        # Every acknowledged message stored (status webhooks of the bot's replies keep coming
        # as long as the ai and outbound queues have work: they are not the ingest's backlog).
        if row["stored"] >= acked:
            drained_at = time.monotonic()
            break
        time.sleep(2)
    monitor.stop_event.set()
    monitor.join()
    final = monitor.sample()
    cpu_after = cpu_by_process(fleet)
    own_after = os.times()
    span = time.monotonic() - t0

    # The screens: which sample message ids arrived, and when.
    sample_rows = query(
        "SELECT wamid, id FROM conversations_message WHERE wamid = ANY(%s)",
        [list(sampler.sent)],
    )
    by_id = {mid: sampler.sent[wamid] for wamid, mid in sample_rows}
    time.sleep(3)
    control.put(list(by_id))
    _kind, screens_result = screens_out.get(timeout=120)
    screens.join(30)
    size_after, tables_after = database_size()
    extra = query(
        "SELECT (SELECT count(*) FROM conversations_customer),"
        " (SELECT count(*) FROM conversations_conversation),"
        " (SELECT count(*) FROM conversations_liveevent),"
        " (SELECT count(*) FROM whatsapp_webhookevent),"
        " (SELECT count(*) FROM bot_botdecision),"
        " (SELECT count(*) FROM conversations_message WHERE direction = 'out')"
    )[0]

    report(
        args,
        results=results,
        posts=posts,
        ok=ok,
        wall=wall,
        acked=acked,
        sampler=sampler,
        monitor=monitor,
        final=final,
        load_end=load_end - t0,
        drained=None if drained_at is None else drained_at - load_end,
        screens=screens_result,
        by_id=by_id,
        cpu=(cpu_before, cpu_after),
        own=(own_before, own_after),
        span=span,
        fleet=fleet,
        sizes=(size_before, tables_before, size_after, tables_after),
        extra=extra,
        loadavg=uptime_at_end,
    )


class _Share:
    """Every ``step``-th body from ``offset``: one client process's part of the run."""

    def __init__(self, maker: BodyMaker, offset: int, step: int, total: int) -> None:
        self.maker, self.offset, self.step = maker, offset, step
        self.count = len(range(offset, total, step))

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, i: int) -> tuple[bytes, str]:
        return self.maker[self.offset + i * self.step]


def report(args, **r) -> None:
    mpp = args.messages_per_post
    ok, results, wall = r["ok"], r["results"], r["wall"]
    statuses = Counter(status for _at, _lat, status in results if status != 200)
    lat = [x * 1000 for x in ok]
    print("\n== acknowledgement (through nginx) ==")
    print(
        f"offered {args.rate:.0f} msg/s ({args.rate / mpp:.0f} POST/s, {mpp} message(s) each) for "
        f"{args.duration:.0f} s; load average at the end {r['loadavg'][0]:.2f} "
        f"{r['loadavg'][1]:.2f} {r['loadavg'][2]:.2f}"
    )
    unsent = r["posts"] - len(results)
    print(
        f"acknowledged {len(ok) * mpp} messages in {wall:.1f} s = {len(ok) * mpp / wall:.0f} msg/s "
        f"({len(ok) / wall:.0f} POST/s); errors {len(results) - len(ok)} {dict(statuses)}; "
        f"not sent by the end (the server could not take them): {unsent} POSTs"
    )
    if lat:
        print(
            f"ack latency ms: p50 {pct(lat, 0.5):.1f}  p90 {pct(lat, 0.9):.1f}  "
            f"p99 {pct(lat, 0.99):.1f}  max {max(lat):.1f}  mean {statistics.fmean(lat):.1f}"
        )
    # Per 30 s of offered load: did the acknowledgement keep up all along?
    buckets: dict[int, list[float]] = {}
    for at, latency, status in results:
        if status == 200:
            buckets.setdefault(int(at // 30), []).append(latency * 1000)
    print(
        "  by 30 s of load: "
        + "  ".join(
            f"[{k * 30}s] {len(v) * mpp / 30:.0f}/s p99 {pct(v, 0.99):.0f}ms"
            for k, v in sorted(buckets.items())
        )
    )

    print("\n== processing lag (webhook events not yet processed) ==")
    print(
        f"{'t s':>6} {'pending':>8} {'oldest s':>9} {'stored':>8} {'q:webhooks':>10} "
        f"{'q:ai':>7} {'q:outbound':>10}"
    )
    rows = r["monitor"].rows
    step = max(1, len(rows) // 40)
    for row in [*rows[::step], r["final"]]:
        print(
            f"{row['t']:6.0f} {row['pending']:8d} {row['oldest']:9.1f} {row['stored']:8d} "
            f"{row.get('webhooks', -1):10d} {row.get('ai', -1):7d} {row.get('outbound', -1):10d}"
        )
    in_load = [row for row in rows if row["t"] <= r["load_end"]]
    if in_load:
        print(
            f"during load: max pending {max(x['pending'] for x in in_load)}, max oldest "
            f"{max(x['oldest'] for x in in_load):.1f} s; stored by the end of the load "
            f"{in_load[-1]['stored']} ({in_load[-1]['stored'] / r['load_end']:.0f} msg/s)"
        )
    final = r["final"]
    if r["drained"] is not None:
        print(
            f"drained {r['drained']:.1f} s after the load ended; {final['stored']} messages "
            f"stored = {final['stored'] / (r['load_end'] + r['drained']):.0f} msg/s overall"
        )
    else:
        after = [x for x in rows if x["t"] > r["load_end"]] or [final]
        first = min(after, key=lambda x: x["t"])
        rate = (final["stored"] - first["stored"]) / max(1e-9, final["t"] - first["t"])
        left = r["acked"] - final["stored"]
        print(
            f"NOT drained {args.drain_timeout:.0f} s after the load: {final['pending']} events "
            f"pending (oldest {final['oldest']:.0f} s), {left} messages to store; drain rate "
            f"{rate:.0f} msg/s → about {left / rate if rate > 0 else float('inf'):.0f} s more"
        )

    print("\n== webhook → agent screen (sample POST start → message.new on the socket) ==")
    by_id = r["by_id"]
    frames = r["screens"]["frames"]
    span = r["span"]
    for i, arrivals in enumerate(r["screens"]["by_socket"]):
        lat_s = [(arrivals[m] - by_id[m]) * 1000 for m in by_id if m in arrivals]
        line = (
            f"socket {i}: {len(lat_s)}/{len(r['sampler'].sent)} samples seen; "
            f"{frames[i] / span:.0f} frames/s"
        )
        if lat_s:
            line += (
                f"; p50 {pct(lat_s, 0.5):.0f} ms  p99 {pct(lat_s, 0.99):.0f} ms  "
                f"max {max(lat_s):.0f} ms"
            )
        print(line)

    print(f"\n== CPU (load + drain, {span:.0f} s) and peak RSS per process (tree) ==")
    before, after = r["cpu"]
    fleet: Fleet = r["fleet"]
    role_cpu: dict[str, float] = {}
    for name in fleet.processes:
        used = after.get(name, 0.0) - before.get(name, 0.0)
        role = fleet.processes[name].spec.role
        role = name if role == "worker" else role
        role_cpu[role] = role_cpu.get(role, 0.0) + used
        print(
            f"  {name:16} {used:8.1f} CPU s ({used / span * 100:5.1f} % of a core)  "
            f"peak RSS {r['monitor'].peak_rss.get(name, 0):7.1f} MB"
        )
    own_before, own_after = r["own"]
    own = (own_after.user + own_after.children_user) - (own_before.user + own_before.children_user)
    own += (own_after.system + own_after.children_system) - (
        own_before.system + own_before.children_system
    )
    print(f"  {'load generator':16} {own:8.1f} CPU s (this process, its clients and screens)")
    stored_n = max(1, r["final"]["stored"])
    print(
        f"  by role (CPU ms per stored message, and the cores that would take {args.rate:.0f} msg/s"
        " at that cost):"
    )
    for role, used in sorted(role_cpu.items(), key=lambda kv: -kv[1]):
        per = used / stored_n
        print(
            f"    {role:16} {used:8.1f} CPU s ({used / span * 100:5.1f} %)  "
            f"{per * 1000:6.2f} ms/msg → {per * args.rate:5.2f} cores  "
            f"peak RSS {r['monitor'].peak_role_rss.get(role, 0):7.1f} MB"
        )
    total = sum(role_cpu.values())
    print(
        f"    {'fleet total':16} {total:8.1f} CPU s  {total / stored_n * 1000:6.2f} ms/msg → "
        f"{total / stored_n * args.rate:5.2f} cores"
    )

    print("\n== database ==")
    size_before, tables_before, size_after, tables_after = r["sizes"]
    stored = final["stored"]
    customers, conversations, live, events, decisions, outbound = r["extra"]
    grown = size_after - size_before
    print(
        f"stored {stored} inbound messages ({outbound} outbound), {customers} customers, "
        f"{conversations} conversations, {live} live events, {events} webhook events, "
        f"{decisions} bot decisions"
    )
    print(
        f"database {size_before / 2**20:.0f} MB → {size_after / 2**20:.0f} MB "
        f"(+{grown / 2**20:.0f} MB); per million inbound messages "
        f"{grown / max(stored, 1) * 1e6 / 2**30:.2f} GB"
    )
    growth = sorted(
        ((t, tables_after.get(t, 0) - tables_before.get(t, 0)) for t in tables_after),
        key=lambda kv: -kv[1],
    )
    for table, delta in growth[:6]:
        print(
            f"  {table:36} +{delta / 2**20:7.1f} MB  "
            f"({delta / max(stored, 1) * 1e6 / 2**30:.2f} GB per million)"
        )


if __name__ == "__main__":
    main()

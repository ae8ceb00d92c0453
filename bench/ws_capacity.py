"""WebSocket capacity of one daphne process with live updates flowing (README "Measured at scale").

Starts the local fleet (``deploy.fleet``) with one ws process, creates ``max(--steps)`` agents
(no team: every socket hears every conversation without a team) with a session each, then for
each step opens console sockets straight to that daphne process until ``N`` are connected
(each behaving like console.js: heartbeat every 20 s), and for each rate in ``--rates`` posts
single-message webhooks through nginx for ``--seconds`` s (customers writing; the fleet's
workers store them and the bot answers, so each webhook is several live events). Per step and
rate it prints:

- sockets connected / refused / closed by the server, connection time;
- fan-out latency: from the start of each webhook's POST to ``message.new`` on every socket,
  p50/p99/max, and the share of (message, socket) pairs delivered; the spread (last socket's
  arrival minus the first's) separates daphne's fan-out from the processing before it;
- frames per second per socket, daphne's CPU (% of one core) and RSS.

A step is *broken* when sockets are refused or closed, fewer than 99 % of the events arrive,
or p99 exceeds ``--p99-limit``; a broken rate is not tried at bigger steps. The sockets are
held by ``--client-processes`` processes on the same machine (their CPU is printed too: on
2 cores they compete with daphne).

    ulimit -n is raised to the hard limit by the script.
    .venv/bin/python bench/ws_capacity.py --steps 100,250,500,1000,2000,4000 --rates 0,1,4

Database ``FLEET_BENCH_DATABASE_URL`` (default ``…/ispsupport_fleetbench_ws``), dropped and
created again, dropped at the end; Redis servers on free ports in 6394-6399.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import random
import re
import resource
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.fleet_ingest import fresh_var_dir, redis_ports  # noqa: E402
from bench.fleet_ingest import query as _query  # noqa: E402
from bench.loadgen import (  # noqa: E402
    envelope,
    pct,
    proc_children,
    proc_cpu_seconds,
    proc_rss_mb,
    proc_tree,
    sign,
)
from deploy.fleet import Fleet, FleetConfig, ensure_database, free_port, running  # noqa: E402

DATABASE_URL = os.environ.get(
    "FLEET_BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/ispsupport_fleetbench_ws"
)
MESSAGE_ID = re.compile(r'"message_id": (\d+)')


def query(sql: str, params: list | tuple = ()) -> list[tuple]:
    return _query(sql, params, url=DATABASE_URL)


def create_sessions(fleet: Fleet, count: int) -> list[str]:
    """``count`` agents without a team, each logged in once (a session in the database, made
    as Django's test client does); returns their session keys."""
    out = fleet.manage(
        "shell",
        "-c",
        "from django.contrib.auth.models import Group\n"
        "from django.test import Client\n"
        "from accounts.models import User\n"
        "group = Group.objects.get(name='agent')\n"
        "names = [f'wsbench{i:05d}' for i in range(" + str(count) + ")]\n"
        "have = set(User.objects.filter(username__in=names).values_list('username', flat=True))\n"
        "User.objects.bulk_create([User(username=n, email=n + '@example.test',"
        " password='!') for n in names if n not in have])\n"
        "users = list(User.objects.filter(username__in=names).order_by('username'))\n"
        "group.user_set.add(*users)\n"
        "keys = []\n"
        "for u in users:\n"
        "    c = Client()\n"
        "    c.force_login(u)\n"
        "    keys.append(c.cookies['sessionid'].value)\n"
        "print('KEYS', ' '.join(keys))\n",
        timeout=900,
    )
    line = next(x for x in out.splitlines() if x.startswith("KEYS "))
    return line.split()[1:]


# --- the sockets (client processes) ----------------------------------------------------------


def clients_process(url: str, origin: str, sessions: list[str], commands, results) -> None:
    """Hold console sockets; commands: ("connect", n) opens the next n, ("collect", ids) sends
    back the arrivals of those message ids and forgets every arrival, ("stop",)."""
    import websockets

    sockets: list = []
    arrivals: list[dict[int, float]] = []
    frames: list[int] = []
    closed: list[str] = []

    async def reader(idx: int, ws) -> None:
        seen = arrivals[idx]
        try:
            async for text in ws:
                now = time.monotonic()
                frames[idx] += 1
                if '"message.new"' in text:
                    found = MESSAGE_ID.search(text)
                    if found:
                        seen.setdefault(int(found.group(1)), now)
        except websockets.ConnectionClosed as exc:
            closed.append(f"closed {exc.rcvd.code if exc.rcvd else 'none'}")
        except Exception as exc:  # a broken socket is a result, not a crash of the bench
            closed.append(type(exc).__name__)

    async def heartbeat(ws) -> None:
        await asyncio.sleep(random.uniform(0, 20))
        while True:
            await ws.send('{"type": "heartbeat", "state": "online"}')
            await asyncio.sleep(20)

    async def connect(session: str, gate: asyncio.Semaphore):
        async with gate:
            ws = await websockets.connect(
                url,
                additional_headers={"Cookie": f"sessionid={session}", "Origin": origin},
                open_timeout=60,
                max_queue=None,
                ping_interval=None,  # daphne pings; the client answers
            )
            ready = json.loads(await asyncio.wait_for(ws.recv(), 60))
            if ready.get("type") != "ready":
                raise RuntimeError(f"first frame {ready.get('type')}")
            return ws

    async def main() -> None:
        loop = asyncio.get_running_loop()
        tasks = []
        gate = asyncio.Semaphore(50)
        while True:
            command = await loop.run_in_executor(None, commands.get)
            if command[0] == "connect":
                start = len(sockets)
                todo = sessions[start : start + command[1]]
                t0 = time.monotonic()
                outcome = await asyncio.gather(
                    *(connect(s, gate) for s in todo), return_exceptions=True
                )
                failures: dict[str, int] = {}
                for ws in outcome:
                    if isinstance(ws, BaseException):
                        name = type(ws).__name__
                        failures[name] = failures.get(name, 0) + 1
                        continue
                    sockets.append(ws)
                    arrivals.append({})
                    frames.append(0)
                    idx = len(sockets) - 1
                    tasks.append(asyncio.create_task(reader(idx, ws)))
                    tasks.append(asyncio.create_task(heartbeat(ws)))
                results.put(
                    {
                        "connected": len(sockets),
                        "failures": failures,
                        "seconds": time.monotonic() - t0,
                    }
                )
            elif command[0] == "collect":
                wanted = command[1]
                results.put(
                    {
                        "by_socket": [
                            {m: seen[m] for m in wanted if m in seen} for seen in arrivals
                        ],
                        "frames": list(frames),
                        "closed": list(closed),
                    }
                )
                for seen in arrivals:
                    seen.clear()
                for i in range(len(frames)):
                    frames[i] = 0
            else:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
                results.put({"stopped": True})
                return

    asyncio.run(main())


# --- webhooks ------------------------------------------------------------------------------------


def post_at_rate(fleet: Fleet, rate: float, seconds: float, customers: list[str]) -> dict:
    """Single-text webhooks through nginx at ``rate``/s for ``seconds``; wamid → POST start."""
    import http.client

    secret = fleet.env["WHATSAPP_APP_SECRET"]
    run = uuid.uuid4().hex[:8].upper()
    sent: dict[str, float] = {}
    lock = threading.Lock()
    interval = 1.0 / rate
    threads = max(1, min(8, int(rate // 4) + 1))
    start = time.monotonic() + 0.2
    count = int(rate * seconds)

    def worker(k: int) -> None:
        for n in range(k, count, threads):
            at = start + n * interval
            delay = at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            wa_id = customers[n % len(customers)]
            wamid = f"wamid.WSCAP{run}{n:06d}"
            message = {
                "from": wa_id,
                "id": wamid,
                "timestamp": str(int(time.time())),
                "type": "text",
                "text": {"body": "A internet caiu de novo"},
            }
            body = json.dumps(
                envelope([message], [{"profile": {"name": "Cliente"}, "wa_id": wa_id}]),
                separators=(",", ":"),
            ).encode()
            started = time.monotonic()
            conn = http.client.HTTPConnection(
                fleet.config.host, fleet.config.balancer_port, timeout=30
            )
            try:
                conn.request(
                    "POST",
                    "/webhooks/whatsapp/",
                    body=body,
                    headers={
                        "Content-Type": "application/json",
                        "X-Hub-Signature-256": sign(secret, body),
                    },
                )
                response = conn.getresponse()
                response.read()
                if response.status == 200:
                    with lock:
                        sent[wamid] = started
            except OSError:
                pass
            finally:
                conn.close()

    pool = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return sent


def raise_nofile() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", default="100,250,500,1000,2000,4000")
    parser.add_argument(
        "--rates", default="0,1,4", help="webhooks per second at each step (0: heartbeats only)"
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="of webhooks per rate")
    parser.add_argument("--customers", type=int, default=40)
    parser.add_argument("--client-processes", type=int, default=2)
    parser.add_argument("--p99-limit", type=float, default=5000.0, help="ms")
    parser.add_argument(
        "--through-balancer",
        action="store_true",
        help="open the sockets through nginx instead of straight to daphne",
    )
    parser.add_argument("--keep-database", action="store_true")
    args = parser.parse_args()
    steps = [int(x) for x in args.steps.split(",")]
    rates = [float(x) for x in args.rates.split(",")]
    nofile = raise_nofile()
    print(f"open files limit {nofile}")

    ensure_database(DATABASE_URL, fresh=True)
    config = FleetConfig(
        database_url=DATABASE_URL,
        var_dir=ROOT / "var" / "fleetbench-ws",
        balancer_port=free_port(),
        graph_port=free_port(),
        redis_ports=redis_ports(),
        web_processes=1,
        web_workers=2,
        ws_processes=1,
        # Thousands of agents online: automatic assignment would give each conversation to one
        # of them (still heard by all: no team), which is not what this measures.
        extra_env={"AUTO_ASSIGN": "0"},
    )
    fresh_var_dir(config.var_dir)
    try:
        with running(config) as fleet:
            run(fleet, args, steps, rates)
            print("stopping the fleet…", flush=True)
    finally:
        if not args.keep_database:
            import psycopg

            admin = DATABASE_URL.rsplit("/", 1)[0] + "/postgres"
            name = DATABASE_URL.rsplit("/", 1)[1]
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run(fleet: Fleet, args, steps: list[int], rates: list[float]) -> None:
    t0 = time.monotonic()
    sessions = create_sessions(fleet, max(steps))
    print(f"{len(sessions)} agent sessions in {time.monotonic() - t0:.0f} s", flush=True)
    ws = fleet.processes["ws-1"]
    ws_url = (
        f"{fleet.ws_url}/ws/console/"
        if args.through_balancer
        else f"ws://{fleet.config.host}:{ws.spec.port}/ws/console/"
    )
    procs, commands, results = [], [], []
    for p in range(args.client_processes):
        cq, rq = mp.Queue(), mp.Queue()
        proc = mp.Process(
            target=clients_process,
            args=(ws_url, fleet.url, sessions[p :: args.client_processes], cq, rq),
        )
        proc.start()
        procs.append(proc)
        commands.append(cq)
        results.append(rq)
    customers = [f"55118{n:08d}" for n in range(args.customers)]
    # The customers' first messages open their conversations (not timed).
    post_at_rate(fleet, 10, args.customers / 10, customers)
    time.sleep(3)
    own_pids = [os.getpid(), *(p.pid for p in procs)]
    alive_rates = list(rates)
    connected = 0
    print(f"\nload average at the start {os.getloadavg()}")
    header = (
        f"{'sockets':>7} {'rate/s':>6} {'delivered':>9} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'max ms':>8} {'spread p99':>10} {'frames/s/sock':>13} {'daphne CPU':>10} "
        f"{'RSS MB':>7} {'clients CPU':>11} {'load':>5}  verdict"
    )
    lines = [header]
    for step in steps:
        want = step - connected
        per = [want // len(procs) + (1 if i < want % len(procs) else 0) for i in range(len(procs))]
        for cq, n in zip(commands, per, strict=True):
            cq.put(("connect", n))
        outcomes = [rq.get(timeout=900) for rq in results]
        connected = sum(o["connected"] for o in outcomes)
        failures: dict[str, int] = {}
        for o in outcomes:
            for k, v in o["failures"].items():
                failures[k] = failures.get(k, 0) + v
        print(
            f"step {step}: {connected} sockets connected in "
            f"{max(o['seconds'] for o in outcomes):.0f} s; refused {failures or 0}; "
            f"daphne RSS {proc_rss_mb(proc_tree(ws.pid, proc_children())):.0f} MB",
            flush=True,
        )
        time.sleep(3)
        # Forget what the connection phase brought (presence events, catch-up).
        for cq in commands:
            cq.put(("collect", []))
        for rq in results:
            rq.get(timeout=120)
        for rate in list(alive_rates):
            cpu0 = proc_cpu_seconds(proc_tree(ws.pid, proc_children()))
            own0 = sum(proc_cpu_seconds([p]) for p in own_pids)
            t_start = time.monotonic()
            # Rate 0: sockets held with heartbeats only (how many one process keeps at all).
            sent = post_at_rate(fleet, rate, args.seconds, customers) if rate else {}
            if not rate:
                time.sleep(args.seconds)
            time.sleep(min(10.0, args.p99_limit / 1000 + 2))  # let the last ones arrive
            span = time.monotonic() - t_start
            cpu = proc_cpu_seconds(proc_tree(ws.pid, proc_children())) - cpu0
            own = sum(proc_cpu_seconds([p]) for p in own_pids) - own0
            rss = proc_rss_mb(proc_tree(ws.pid, proc_children()))
            rows = query(
                "SELECT wamid, id FROM conversations_message WHERE wamid = ANY(%s)",
                [list(sent)],
            )
            by_id = {mid: sent[wamid] for wamid, mid in rows}
            for cq in commands:
                cq.put(("collect", list(by_id)))
            collected = [rq.get(timeout=300) for rq in results]
            latencies, spreads, frames, closed = [], [], [], []
            first: dict[int, float] = {}
            last: dict[int, float] = {}
            for c in collected:
                frames.extend(c["frames"])
                closed.extend(c["closed"])
                for arrivals in c["by_socket"]:
                    for mid, at in arrivals.items():
                        latencies.append((at - by_id[mid]) * 1000)
                        first[mid] = min(first.get(mid, at), at)
                        last[mid] = max(last.get(mid, at), at)
            spreads = [(last[m] - first[m]) * 1000 for m in first]
            expected = len(by_id) * connected
            delivered = len(latencies) / expected if expected else 0.0
            p99 = pct(latencies, 0.99)
            broken = []
            if failures:
                broken.append(f"refused {sum(failures.values())}")
            if closed:
                broken.append(f"closed {len(closed)}")
            if rate and delivered < 0.99:
                broken.append(f"delivered {delivered:.1%}")
            if rate and (not latencies or p99 > args.p99_limit):
                broken.append(f"p99 > {args.p99_limit:.0f} ms")
            line = (
                f"{connected:7d} {rate:6.0f} {delivered:9.1%} {pct(latencies, 0.5):8.0f} "
                f"{p99:8.0f} {max(latencies or [float('nan')]):8.0f} "
                f"{pct(spreads, 0.99):10.0f} "
                f"{(sum(frames) / max(1, len(frames))) / span:13.1f} "
                f"{cpu / span * 100:9.0f}% {rss:7.0f} {own / span * 100:10.0f}% "
                f"{os.getloadavg()[0]:5.1f}  {'BROKEN: ' + ', '.join(broken) if broken else 'ok'}"
            )
            lines.append(line)
            print(line, f"(posted {len(sent)}, stored {len(by_id)})", flush=True)
            if broken and rate:
                alive_rates.remove(rate)
                if closed:
                    print(f"  closed: {sorted(set(closed))[:5]}")
        if not alive_rates or connected < step or closed:
            print("stopping: every rate broke or sockets were refused")
            break
    print("\n== summary ==")
    print("\n".join(lines))
    for cq in commands:
        cq.put(("stop",))
    for rq in results:
        rq.get(timeout=120)
    for proc in procs:
        proc.join(30)


if __name__ == "__main__":
    main()

"""The real fleet on one machine: roles, start, stop, and helpers for tests and benchmarks.

``make prod-local`` (``deploy/prod-local.sh``) and the fleet tests use this module, and the fault
tests and benchmarks reuse it. It starts, against the local PostgreSQL and its own Redis servers:

=================  ========================================================================
role               process(es)
=================  ========================================================================
redis-cache        redis-server with ``deploy/redis/cache.conf`` (allkeys-lru, maxmemory)
redis-broker       redis-server with ``deploy/redis/broker.conf`` (noeviction, append-only)
redis-channels     redis-server with ``deploy/redis/channels.conf`` (noeviction, pub/sub)
graph              the Graph API simulator (stands in for Meta; daphne, SIMULATOR_ENABLED)
web-1..N           gunicorn ``whatsapp.wsgi:application`` (sync workers), one port each
ws-1..M            daphne ``ispsupport.asgi:application`` (the ``/ws/`` sockets)
worker-<queue>     one Celery worker per queue (``QUEUES``)
beat               Celery beat (exactly one in a fleet)
balancer           nginx (Debian's package) with ``deploy/nginx/locations.conf``
=================  ========================================================================

Every process writes its log to ``var/fleet/logs/<name>.log``; ``var/fleet/state.json``
records pids (with their start time, so a recycled pid is never signalled), ports, commands and
environment, so another process (``make prod-local-stop``) can stop the fleet. Each process
runs in its own session: stopping one never signals anything we did not start.

Why nginx and not a Python proxy: it is what production runs (docker-compose uses the same
``locations.conf``), it is one ``apt-get install nginx-light`` away on Debian (``.ci/run``
installs it), it proxies WebSockets and balances without sticky sessions, and a Python proxy on
a 2-core machine would be the bottleneck of every benchmark that goes through it.

Command line: ``python -m deploy.fleet start|stop|status`` (``--help`` for options).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import hmac
import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"

# The Celery queues, one worker each (ispsupport/settings.py CELERY_TASK_ROUTES plus the
# default queue; tests/fleet/test_deploy_config.py checks they agree).
QUEUES = ("webhooks", "ai", "outbound", "media", "default")

# The commands of each role, shared with the Procfile and docker-compose (the config test checks
# that they agree). Ports and concurrency are filled in per process.
WSGI_APP = "whatsapp.wsgi:application"
ASGI_APP = "ispsupport.asgi:application"
GUNICORN_CONFIG = "deploy/gunicorn.conf.py"


def web_command(python: str = "python") -> list[str]:
    """gunicorn; bind address, port and workers come from PORT / WEB_CONCURRENCY."""
    return [python, "-m", "gunicorn", WSGI_APP, "-c", GUNICORN_CONFIG]


def ws_command(port: int, host: str = "0.0.0.0", python: str = "python") -> list[str]:
    return [python, "-m", "daphne", "-b", host, "-p", str(port), ASGI_APP]


def worker_command(queue: str, concurrency: int, python: str = "python") -> list[str]:
    """One worker per queue: a flood on one queue never starves another's replies."""
    return [
        python, "-m", "celery", "-A", "ispsupport", "worker",
        "-Q", queue, "-n", f"{queue}@%h", "-c", str(concurrency),
        "-O", "fair", "--without-gossip", "--without-mingle",
        "--max-tasks-per-child", "1000", "-l", "info",
    ]  # fmt: skip


def beat_command(schedule_file: str, python: str = "python") -> list[str]:
    return [
        python, "-m", "celery", "-A", "ispsupport", "beat", "-l", "info",
        "-s", schedule_file, "--pidfile=",
    ]  # fmt: skip


# Database pool per process (README "Connection pool"): a sync gunicorn worker or a prefork
# Celery child handles one thing at a time; daphne runs database calls on a small thread pool.
POOL_MAX_SIZE = {"web": 2, "ws": 4, "worker": 2, "beat": 1, "graph": 1}

REDIS_ROLES = ("cache", "broker", "channels")


class FleetError(RuntimeError):
    """The fleet could not start or stop; the message names the process and its log."""


def free_port(start: int | None = None, end: int | None = None) -> int:
    """A TCP port nobody listens on: any (``start`` None) or the first free one in a range."""
    if start is None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return sock.getsockname()[1]
    for port in range(start, (end or start) + 1):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise FleetError(f"no free port between {start} and {end}")


# Agents' sockets one balancer must pass: one daphne process holds 4,000 (README "Measured at
# scale"), and each costs nginx two connections; with 4096 the balancer refused the 2,048th.
BALANCER_SOCKETS = 8000


def balancer_limits() -> tuple[int, int]:
    """``(worker_rlimit_nofile, worker_connections)`` for the one nginx worker: room for
    ``BALANCER_SOCKETS`` proxied sockets plus HTTP, within this machine's open-files hard limit
    (nginx cannot raise its own limit past it)."""
    import resource

    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    wanted = 2 * BALANCER_SOCKETS + 1024
    files = wanted + 1024 if hard == resource.RLIM_INFINITY else min(hard, wanted + 1024)
    return files, min(wanted, files - 256)


def _fernet_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


@dataclass
class FleetConfig:
    """What to start. Defaults are what ``make prod-local`` uses (overridable by environment)."""

    database_url: str = "postgres://postgres@127.0.0.1:5432/ispsupport_fleet"
    var_dir: Path = ROOT / "var" / "fleet"
    host: str = "127.0.0.1"
    balancer_port: int = 8080
    web_processes: int = 2
    web_workers: int = 2  # gunicorn workers per web process
    web_ports: list[int] = field(default_factory=list)
    ws_processes: int = 1
    ws_ports: list[int] = field(default_factory=list)
    worker_concurrency: dict[str, int] = field(
        default_factory=lambda: {"webhooks": 2, "ai": 1, "outbound": 1, "media": 1, "default": 1}
    )
    # Own Redis servers (one per role, the deploy/redis/*.conf policies) on these ports; or None
    # to use the URLs in ``redis_urls`` (an existing Redis).
    redis_ports: dict[str, int] | None = field(
        default_factory=lambda: {"cache": 6391, "broker": 6392, "channels": 6393}
    )
    redis_urls: dict[str, str] = field(default_factory=dict)
    graph_simulator: bool = True
    graph_port: int = 8190
    beat: bool = True
    extra_env: dict[str, str] = field(default_factory=dict)
    python: str = sys.executable

    @classmethod
    def from_env(cls) -> FleetConfig:
        """``make prod-local``'s configuration: FLEET_* variables, then the defaults."""
        config = cls()
        env = os.environ
        config.database_url = env.get("FLEET_DATABASE_URL", config.database_url)
        config.balancer_port = int(env.get("FLEET_PORT", config.balancer_port))
        config.web_processes = int(env.get("FLEET_WEB_PROCESSES", config.web_processes))
        config.web_workers = int(env.get("FLEET_WEB_WORKERS", config.web_workers))
        config.ws_processes = int(env.get("FLEET_WS_PROCESSES", config.ws_processes))
        if env.get("FLEET_VAR_DIR"):
            config.var_dir = Path(env["FLEET_VAR_DIR"])
        if env.get("FLEET_REDIS_URL"):  # one existing Redis for every role (policies not ours)
            config.redis_ports = None
            config.redis_urls = dict.fromkeys(REDIS_ROLES, env["FLEET_REDIS_URL"])
        return config


@dataclass
class ProcessSpec:
    name: str
    role: str
    argv: list[str]
    env: dict[str, str]
    port: int | None = None
    ready: str = "http"  # "http" (GET /healthz), "redis" (PING), "log:<text>" or "none"


@dataclass
class RunningProcess:
    spec: ProcessSpec
    pid: int
    started: str  # /proc/<pid>/stat start time: pid + start time identify the process
    log: str
    handle: subprocess.Popen | None = None


def _proc_start_time(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22 counts from after the parenthesised command name (which may contain spaces).
    fields = stat.rsplit(")", 1)[1].split()
    return fields[19] if len(fields) > 19 else None


def _alive(pid: int, started: str) -> bool:
    state = None
    with contextlib.suppress(OSError):
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return state not in (None, "Z", "X") and _proc_start_time(pid) == started


def http_get(url: str, timeout: float = 5.0, headers: dict[str, str] | None = None):
    """``(status, headers, body)`` of a GET; raises OSError when nothing answers."""
    parsed = urlparse(url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=timeout)
    try:
        conn.request(
            "GET", parsed.path + (f"?{parsed.query}" if parsed.query else ""), headers=headers or {}
        )
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


class Fleet:
    """A fleet described by a ``FleetConfig``; ``start()``/``stop()``, or use it as a context.

    ``Fleet.attach(var_dir)`` rebuilds a running fleet from its ``state.json`` (to stop it from
    another process, or to signal one of its processes in a fault test).
    """

    def __init__(self, config: FleetConfig) -> None:
        self.config = config
        self.var_dir = Path(config.var_dir)
        self.logs = self.var_dir / "logs"
        self.state_file = self.var_dir / "state.json"
        self.processes: dict[str, RunningProcess] = {}
        self.env: dict[str, str] = {}
        self.fleet_id = ""
        # Supervision (``supervise()``): processes stopped on purpose, and every restart made.
        self.restarts: list[dict[str, object]] = []
        self._held_down: set[str] = set()
        self._lock = threading.RLock()
        self._supervisor: threading.Thread | None = None
        self._supervisor_stop = threading.Event()

    # --- configuration ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.config.host}:{self.config.balancer_port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.config.host}:{self.config.balancer_port}"

    @property
    def graph_url(self) -> str:
        return f"http://{self.config.host}:{self.config.graph_port}"

    def redis_url(self, role: str) -> str:
        """The URL of a Redis role (cache, broker, channels)."""
        if self.config.redis_ports is not None:
            return f"redis://{self.config.host}:{self.config.redis_ports[role]}/0"
        return self.config.redis_urls[role]

    def _secrets(self) -> dict[str, str]:
        """Kept in var/: the fleet's database stays readable across restarts (encrypted fields)."""
        path = self.var_dir / "secrets.json"
        if path.exists():
            return json.loads(path.read_text())
        values = {
            "SECRET_KEY": secrets.token_urlsafe(50),
            "WHATSAPP_APP_SECRET": secrets.token_hex(16),
            "WHATSAPP_VERIFY_TOKEN": secrets.token_urlsafe(16),
            "WHATSAPP_ACCESS_TOKEN": "fleet-" + secrets.token_urlsafe(24),
            "FIELD_ENCRYPTION_KEYS": _fernet_key(),
            "BLIND_INDEX_KEY": secrets.token_urlsafe(48),
        }
        path.write_text(json.dumps(values, indent=2))
        path.chmod(0o600)
        return values

    def _base_env(self) -> dict[str, str]:
        c = self.config
        hosts = f"{c.host},localhost"
        origins = f"http://{c.host}:{c.balancer_port},http://localhost:{c.balancer_port}"
        env = {
            key: value
            for key, value in os.environ.items()
            # The fleet's own settings win over whatever the calling shell (or pytest) has.
            if not key.startswith(("PYTEST", "DJANGO_", "CELERY_", "DB_POOL"))
            and key not in {"DATABASE_URL", "REDIS_URL", "CACHE_REDIS_URL", "CHANNEL_REDIS_URL"}
        }
        env.update(self._secrets())
        env.update(
            DJANGO_SETTINGS_MODULE="ispsupport.settings",
            PYTHONUNBUFFERED="1",
            DEBUG="0",
            ALLOWED_HOSTS=hosts,
            CSRF_TRUSTED_ORIGINS=origins,
            # Plain HTTP on loopback: production terminates TLS at the balancer.
            SECURE_SSL_REDIRECT="0",
            SECURE_HSTS_SECONDS="0",
            TRUSTED_PROXY_COUNT="1",
            DATABASE_URL=c.database_url,
            CACHE_REDIS_URL=self.redis_url("cache"),
            CELERY_BROKER_URL=self.redis_url("broker"),
            CELERY_RESULT_BACKEND=self.redis_url("broker"),
            CHANNEL_REDIS_URL=self.redis_url("channels"),
            # Pub/sub ignores database numbers: a fleet never hears another fleet or test run.
            CHANNEL_PREFIX=f"isp-ws-{self.fleet_id}",
            WHATSAPP_PHONE_NUMBER_ID="100000000000001",
            WHATSAPP_BUSINESS_ACCOUNT_ID="100000000000010",
            MEDIA_ROOT=str(self.var_dir / "media"),
            LOG_FORMAT="plain",
        )
        if c.graph_simulator:
            env.update(
                WHATSAPP_API_BASE_URL=f"{self.graph_url}/simulator/graph",
                SIMULATOR_WEBHOOK_URL=f"{self.url}/webhooks/whatsapp/",
            )
        env.update(c.extra_env)
        return env

    def _specs(self) -> list[ProcessSpec]:
        c = self.config
        py = c.python
        base = self.env
        specs: list[ProcessSpec] = []

        def role_env(role: str, **extra: str) -> dict[str, str]:
            return {**base, "DB_POOL_MAX_SIZE": str(POOL_MAX_SIZE[role]), **extra}

        if c.redis_ports is not None:
            redis_server = shutil.which("redis-server")
            if not redis_server:
                raise FleetError("redis-server is not installed (apt-get install redis-server)")
            for role in REDIS_ROLES:
                data = self.var_dir / "redis" / role
                data.mkdir(parents=True, exist_ok=True)
                specs.append(
                    ProcessSpec(
                        name=f"redis-{role}",
                        role="redis",
                        argv=[
                            redis_server,
                            str(DEPLOY / "redis" / f"{role}.conf"),
                            "--port",
                            str(c.redis_ports[role]),
                            "--bind",
                            c.host,
                            "--dir",
                            str(data),
                            "--daemonize",
                            "no",
                        ],
                        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
                        port=c.redis_ports[role],
                        ready="redis",
                    )
                )
        if c.graph_simulator:
            specs.append(
                ProcessSpec(
                    name="graph",
                    role="graph",
                    argv=ws_command(c.graph_port, c.host, py),
                    env=role_env("graph", SIMULATOR_ENABLED="1"),
                    port=c.graph_port,
                )
            )
        for i, port in enumerate(c.web_ports, start=1):
            specs.append(
                ProcessSpec(
                    name=f"web-{i}",
                    role="web",
                    argv=web_command(py),
                    env=role_env(
                        "web",
                        PORT=str(port),
                        WEB_BIND_HOST=c.host,
                        WEB_CONCURRENCY=str(c.web_workers),
                    ),
                    port=port,
                )
            )
        for i, port in enumerate(c.ws_ports, start=1):
            specs.append(
                ProcessSpec(
                    name=f"ws-{i}",
                    role="ws",
                    argv=ws_command(port, c.host, py),
                    env=role_env("ws"),
                    port=port,
                )
            )
        for queue in QUEUES:
            argv = worker_command(queue, c.worker_concurrency.get(queue, 1), py)
            argv[argv.index(f"{queue}@%h")] = f"{queue}@{self.fleet_id}"
            specs.append(
                ProcessSpec(
                    name=f"worker-{queue}",
                    role="worker",
                    argv=argv,
                    env=role_env("worker"),
                    ready=f"log:{queue}@{self.fleet_id} ready.",
                )
            )
        if c.beat:
            specs.append(
                ProcessSpec(
                    name="beat",
                    role="beat",
                    argv=beat_command(str(self.var_dir / "celerybeat-schedule"), py),
                    env=role_env("beat"),
                    ready="log:beat: Starting",
                )
            )
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        if not Path(nginx).exists():
            raise FleetError(
                "nginx is not installed: apt-get install nginx-light (Debian's package)"
            )
        specs.append(
            ProcessSpec(
                name="balancer",
                role="balancer",
                argv=[nginx, "-p", str(self.var_dir / "nginx") + "/", "-c", "nginx.conf"],
                env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
                port=c.balancer_port,
            )
        )
        return specs

    def render_nginx(self) -> str:
        """The balancer's nginx.conf: our upstreams around the shared ``locations.conf``."""
        c = self.config
        prefix = self.var_dir / "nginx"
        web = "\n".join(
            f"        server {c.host}:{p} max_fails=3 fail_timeout=5s;" for p in c.web_ports
        )
        ws = "\n".join(
            f"        server {c.host}:{p} max_fails=3 fail_timeout=5s;" for p in c.ws_ports
        )
        temp = prefix / "tmp"
        files, connections = balancer_limits()
        return f"""# Rendered by deploy/fleet.py for the local fleet; the rules are deploy/nginx/locations.conf.
daemon off;
master_process on;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {self.logs}/balancer-error.log warn;
# Every WebSocket through the balancer holds two connections (the agent's and daphne's).
worker_rlimit_nofile {files};
events {{
    worker_connections {connections};
}}
http {{
    access_log {self.logs}/balancer-access.log;
    client_body_temp_path {temp}/client;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    map $http_upgrade $connection_upgrade {{
        default upgrade;
        "" "";
    }}
    upstream web {{
{web}
    }}
    upstream ws {{
        least_conn;
{ws}
    }}
    server {{
        listen {c.host}:{c.balancer_port};
        # Which process answered: lets tests see that requests are spread (local fleet only).
        add_header X-Fleet-Upstream $upstream_addr always;
        include {DEPLOY}/nginx/locations.conf;
    }}
}}
"""

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self, timeout: float = 180.0) -> Fleet:
        """Migrate, collect static files, start every process and wait until all are ready.

        Raises ``FleetError`` naming the process (and the tail of its log) that failed to come
        up within ``timeout`` seconds; whatever had started is stopped again.
        """
        c = self.config
        if self.state_file.exists():
            existing = Fleet.attach(self.var_dir)
            if any(_alive(p.pid, p.started) for p in existing.processes.values()):
                raise FleetError(
                    f"a fleet is already running from {self.var_dir} (stop it first: "
                    "make prod-local-stop)"
                )
        deadline = time.monotonic() + timeout
        for sub in ("logs", "media", "nginx/tmp"):
            (self.var_dir / sub).mkdir(parents=True, exist_ok=True)
        self.fleet_id = f"{socket.gethostname()[:20]}-{c.balancer_port}"
        if not c.web_ports:
            c.web_ports = [free_port() for _ in range(c.web_processes)]
        if not c.ws_ports:
            c.ws_ports = [free_port() for _ in range(c.ws_processes)]
        self.env = self._base_env()
        (self.var_dir / "nginx" / "nginx.conf").write_text(self.render_nginx())
        specs = self._specs()
        try:
            redis_specs = [s for s in specs if s.role == "redis"]
            for spec in redis_specs:
                self._launch(spec)
            self._wait_ready(redis_specs, deadline)
            self._prepare(deadline)
            rest = [s for s in specs if s.role != "redis"]
            for spec in rest:
                self._launch(spec)
            self._wait_ready(rest, deadline)
            self._wait_http(f"{self.url}/readyz", deadline, "balancer /readyz")
        except BaseException:
            self.stop()
            raise
        return self

    def _prepare(self, deadline: float) -> None:
        """Database schema and static files, before any process serves."""
        env = {**self.env, "DB_POOL_MAX_SIZE": "2"}
        ensure_database(self.config.database_url)
        self._run(
            [self.config.python, "manage.py", "migrate", "--noinput", "-v", "0"], env, deadline
        )
        manifest = ROOT / "staticfiles" / "staticfiles.json"
        sources = [p for p in (ROOT / "static").rglob("*") if p.is_file()]
        newest = max((p.stat().st_mtime for p in sources), default=0)
        if not manifest.exists() or manifest.stat().st_mtime < newest:
            self._run(
                [self.config.python, "manage.py", "collectstatic", "--noinput", "-v", "0"],
                env,
                deadline,
            )

    def _run(self, argv: list[str], env: dict[str, str], deadline: float) -> None:
        log = self.logs / "prepare.log"
        with log.open("ab") as out:
            result = subprocess.run(
                argv,
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=max(5.0, deadline - time.monotonic()),
                check=False,
            )
        if result.returncode != 0:
            raise FleetError(f"{' '.join(argv[1:3])} failed; see {log}:\n{_tail(log)}")

    def _launch(self, spec: ProcessSpec) -> RunningProcess:
        log = self.logs / f"{spec.name}.log"
        with log.open("ab") as out:
            out.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting {spec.name}\n".encode())
            handle = subprocess.Popen(
                spec.argv,
                cwd=ROOT,
                env=spec.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: signals reach only it
            )
        started = None
        for _ in range(50):
            started = _proc_start_time(handle.pid)
            if started:
                break
            time.sleep(0.01)
        process = RunningProcess(spec, handle.pid, started or "", str(log), handle)
        self.processes[spec.name] = process
        self._save_state()  # at once: an interrupted start can still be stopped
        return process

    def _wait_ready(self, specs: list[ProcessSpec], deadline: float) -> None:
        pending = list(specs)
        while pending:
            for spec in list(pending):
                process = self.processes[spec.name]
                if not self.is_running(spec.name):
                    raise FleetError(
                        f"{spec.name} exited; see {process.log}:\n{_tail(Path(process.log))}"
                    )
                if self._is_ready(spec, process):
                    pending.remove(spec)
            if not pending:
                return
            if time.monotonic() > deadline:
                names = ", ".join(s.name for s in pending)
                raise FleetError(
                    f"not ready in time: {names}; see {self.logs}:\n"
                    + _tail(Path(self.processes[pending[0].name].log))
                )
            time.sleep(0.25)

    def _is_ready(self, spec: ProcessSpec, process: RunningProcess) -> bool:
        try:
            if spec.ready == "http":
                return http_get(f"http://{self.config.host}:{spec.port}/healthz", 2.0)[0] == 200
            if spec.ready == "redis":
                with socket.create_connection((self.config.host, spec.port), timeout=1) as sock:
                    sock.sendall(b"PING\r\n")
                    return sock.recv(64).startswith(b"+PONG")
            if spec.ready.startswith("log:"):
                return spec.ready[4:].encode() in Path(process.log).read_bytes()
        except OSError:
            return False
        return True

    def _wait_http(self, url: str, deadline: float, what: str) -> None:
        last = ""
        while time.monotonic() < deadline:
            try:
                status, _, body = http_get(url, 3.0)
                if status == 200:
                    return
                last = f"HTTP {status}: {body[:300]!r}"
            except OSError as exc:
                last = repr(exc)
            time.sleep(0.3)
        raise FleetError(f"{what} not ready in time ({last})")

    def stop(self, timeout: float = 30.0) -> dict[str, str]:
        """Stop every process, balancer first and Redis last; returns ``{name: how}``.

        SIGTERM (SIGQUIT for nginx: graceful) and a wait, so Celery finishes its tasks (acks
        late) and gunicorn its requests; SIGKILL to the process's own group after ``timeout``.
        """
        self._stop_supervising()
        order = ["balancer", "web", "ws", "graph", "beat", "worker", "redis"]
        outcome: dict[str, str] = {}
        for role in order:
            names = [n for n, p in self.processes.items() if p.spec.role == role]
            for name in names:
                self.send_signal(name, signal.SIGQUIT if role == "balancer" else signal.SIGTERM)
            for name in names:
                outcome[name] = self._reap(name, timeout)
        if self.state_file.exists():
            self.state_file.unlink()
        return outcome

    def _reap(self, name: str, timeout: float) -> str:
        process = self.processes[name]
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if not self.is_running(name):
                return "stopped"
            time.sleep(0.1)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if _alive(process.pid, process.started):
                os.killpg(process.pid, signal.SIGKILL)
        if process.handle is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.handle.wait(5)
        return "killed"

    # --- single processes (fault tests) --------------------------------------------------------

    def is_running(self, name: str) -> bool:
        process = self.processes[name]
        if process.handle is not None:
            return process.handle.poll() is None
        return _alive(process.pid, process.started)

    def send_signal(self, name: str, sig: int) -> bool:
        """Send ``sig`` to one process of the fleet (only if it is still the one we started)."""
        process = self.processes[name]
        if not self.is_running(name):
            return False
        try:
            os.kill(process.pid, sig)
        except ProcessLookupError:
            return False
        return True

    def stop_process(
        self, name: str, timeout: float = 30.0, sig: int = signal.SIGTERM, *, group: bool = False
    ) -> str:
        """Stop one process (SIGKILL for a crash, SIGTERM for a clean stop).

        ``group=True`` signals its whole process group (a Celery worker with its pool
        processes: the crash of a host or container), not only its main process.
        """
        self._held_down.add(name)  # on purpose: the supervisor leaves it down
        if group:
            process = self.processes[name]
            if self.is_running(name):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(process.pid, sig)
        else:
            self.send_signal(name, sig)
        return self._reap(name, timeout)

    def pool_processes(self, name: str) -> list[int]:
        """Pids of the children of one process: a prefork Celery worker's pool processes."""
        process = self.processes[name]
        if not self.is_running(name):
            return []
        children = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[1] == str(process.pid) and fields[0] not in ("Z", "X"):
                children.append(int(stat.parent.name))
        return sorted(children)

    def kill_pool_processes(self, name: str, sig: int = signal.SIGKILL) -> list[int]:
        """Signal every pool process of a worker (the main process stays: it sees them die,
        requeues their tasks and starts new ones). Returns the pids signalled."""
        killed = []
        for pid in self.pool_processes(name):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
                killed.append(pid)
        return killed

    def start_process(self, name: str, timeout: float = 60.0) -> None:
        """Start one stopped process again, with the command it had, and wait until it is ready."""
        with self._lock:
            if self.is_running(name):
                raise FleetError(f"{name} is already running")
            spec = self.processes[name].spec
            self._launch(spec)
            self._held_down.discard(name)
        self._wait_ready([spec], time.monotonic() + timeout)

    # --- supervision --------------------------------------------------------------------------

    def supervise(self, interval: float = 1.0) -> None:
        """Start again, from now on, any process that exits without being stopped through
        ``stop_process``/``stop`` — what production's process manager does (docker-compose
        ``restart: unless-stopped``, systemd ``Restart=always``). Each restart is appended to
        ``restarts`` (name, exit status, time) and noted in the process's log."""
        if self._supervisor is not None and self._supervisor.is_alive():
            return
        self._supervisor_stop.clear()
        self._supervisor = threading.Thread(
            target=self._supervise, args=(interval,), name="fleet-supervisor", daemon=True
        )
        self._supervisor.start()

    def _supervise(self, interval: float) -> None:
        while not self._supervisor_stop.wait(interval):
            for name, process in list(self.processes.items()):
                with self._lock:
                    if self._supervisor_stop.is_set():
                        return
                    if name in self._held_down or self.is_running(name):
                        continue
                    status = process.handle.poll() if process.handle is not None else None
                    self.restarts.append({"name": name, "exit": status, "at": time.time()})
                    with contextlib.suppress(OSError), open(process.log, "ab") as log:
                        log.write(
                            f"\n--- exited ({status}); restarted by the supervisor\n".encode()
                        )
                    try:
                        self._launch(process.spec)
                    except OSError:
                        self.restarts[-1]["failed"] = True

    def _stop_supervising(self) -> None:
        self._supervisor_stop.set()
        if self._supervisor is not None:
            self._supervisor.join(10)
            self._supervisor = None

    # --- state --------------------------------------------------------------------------------

    def _save_state(self) -> None:
        state = {
            "fleet_id": self.fleet_id,
            "config": {
                **{k: v for k, v in asdict(self.config).items() if k != "var_dir"},
                "var_dir": str(self.var_dir),
            },
            "env": self.env,
            "processes": {
                name: {"spec": asdict(p.spec), "pid": p.pid, "started": p.started, "log": p.log}
                for name, p in self.processes.items()
            },
        }
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.chmod(0o600)
        tmp.replace(self.state_file)

    @classmethod
    def attach(cls, var_dir: Path | str) -> Fleet:
        """The fleet whose state is in ``var_dir`` (started by another process)."""
        var_dir = Path(var_dir)
        state = json.loads((var_dir / "state.json").read_text())
        raw = dict(state["config"])
        raw["var_dir"] = Path(raw["var_dir"])
        fleet = cls(FleetConfig(**raw))
        fleet.fleet_id = state["fleet_id"]
        fleet.env = state["env"]
        for name, p in state["processes"].items():
            fleet.processes[name] = RunningProcess(
                ProcessSpec(**p["spec"]), p["pid"], p["started"], p["log"]
            )
        return fleet

    def status(self) -> dict[str, str]:
        return {
            name: ("running" if self.is_running(name) else "stopped") + f" (pid {p.pid})"
            for name, p in self.processes.items()
        }

    # --- helpers for tests and benchmarks -------------------------------------------------------

    def manage(self, *args: str, timeout: float = 120.0) -> str:
        """Run ``manage.py`` against the fleet's database and Redis; returns stdout."""
        result = subprocess.run(
            [self.config.python, "manage.py", *args],
            cwd=ROOT,
            env={**self.env, "DB_POOL_MAX_SIZE": "2"},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise FleetError(f"manage.py {' '.join(args[:1])} failed:\n{result.stderr[-3000:]}")
        return result.stdout

    def sign(self, body: bytes) -> str:
        """Meta's ``X-Hub-Signature-256`` for ``body`` with this fleet's app secret."""
        secret = self.env["WHATSAPP_APP_SECRET"].encode()
        return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()

    def post_webhook(self, body: bytes, timeout: float = 10.0) -> int:
        """POST a signed webhook through the balancer; returns the HTTP status."""
        conn = http.client.HTTPConnection(
            self.config.host, self.config.balancer_port, timeout=timeout
        )
        try:
            conn.request(
                "POST",
                "/webhooks/whatsapp/",
                body=body,
                headers={
                    "Content-Type": "application/json",
                    "X-Hub-Signature-256": self.sign(body),
                },
            )
            response = conn.getresponse()
            response.read()
            return response.status
        finally:
            conn.close()

    def graph_faults(self, method: str = "GET", fault: dict | None = None) -> dict:
        """The Graph simulator's fault control (``/simulator/api/faults``): ``POST`` a fault
        (see ``whatsapp.simulator.views.api_faults``), ``DELETE`` them all, ``GET`` the state."""
        conn = http.client.HTTPConnection(self.config.host, self.config.graph_port, timeout=10)
        try:
            body = json.dumps(fault).encode() if fault is not None else None
            conn.request(
                method,
                "/simulator/api/faults",
                body=body,
                headers={"Content-Type": "application/json"} if body else {},
            )
            response = conn.getresponse()
            payload = response.read()
            if response.status != 200:
                raise FleetError(f"graph faults {method}: HTTP {response.status} {payload[:300]!r}")
            return json.loads(payload)
        finally:
            conn.close()

    def graph_thread(self, wa_id: str) -> list[dict]:
        """What the simulated phone of ``wa_id`` holds (``dir`` "out": sends Meta accepted)."""
        status, _, body = http_get(f"{self.graph_url}/simulator/api/thread?wa_id={wa_id}", 10.0)
        if status != 200:
            raise FleetError(f"graph thread: HTTP {status}")
        return json.loads(body)["messages"]

    def __enter__(self) -> Fleet:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def ensure_database(url: str, *, fresh: bool = False) -> bool:
    """Create the PostgreSQL database of ``url`` when it does not exist; True if created.

    ``fresh=True`` drops it first (tests: a new fleet has new encryption keys, so rows written
    under an earlier fleet's keys could not be read).
    """
    import psycopg
    from psycopg import sql

    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    admin = parsed._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
        if fresh:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
        elif conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            return False
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return True


class PrivatePostgres:
    """A throwaway PostgreSQL server of our own (``initdb`` + ``pg_ctl`` in a temporary folder).

    For fault tests that must stop or restart the database: the shared server on 5432 serves
    other people and is never touched. Listens on 127.0.0.1:``port`` only (trust, user
    ``postgres``), sockets inside its folder. As root the server runs as the ``postgres`` user
    (``initdb`` refuses root); as anyone else, as that user. ``remove()`` stops it and deletes
    the folder; call it in a ``finally`` (or a fixture finalizer) whatever happens.

    ``PrivatePostgres.unavailable()`` says why one cannot be made here (no server binaries, root
    without a ``postgres`` user), or returns None.
    """

    def __init__(
        self,
        port: int | None = None,
        *,
        bindir: Path | None = None,
        settings: dict[str, str] | None = None,
    ) -> None:
        self.bindir = bindir or self.find_bindir()
        if self.bindir is None:
            raise FleetError(self.unavailable() or "PostgreSQL server binaries not found")
        self.port = port or free_port()
        self.settings = dict(settings or {})  # more postgresql.conf lines (name → value)
        self.dir: Path | None = None
        self.started = False

    # --- where the binaries are, and who runs them --------------------------------------------

    @staticmethod
    def find_bindir() -> Path | None:
        """``PG_BINDIR``, else the newest ``/usr/lib/postgresql/<v>/bin`` (Debian, Ubuntu), else
        the folder of an ``initdb`` on PATH."""
        candidates: list[Path] = []
        if os.environ.get("PG_BINDIR"):
            candidates.append(Path(os.environ["PG_BINDIR"]))

        def version(path: Path) -> float:
            try:
                return float(path.parent.name)
            except ValueError:
                return 0.0

        debian = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version, reverse=True)
        candidates.extend(debian)
        on_path = shutil.which("initdb")
        if on_path:
            candidates.append(Path(on_path).resolve().parent)
        for folder in candidates:
            if all((folder / b).is_file() for b in ("initdb", "pg_ctl", "postgres")):
                return folder
        return None

    @classmethod
    def unavailable(cls) -> str | None:
        if cls.find_bindir() is None:
            return (
                "no PostgreSQL server binaries (initdb, pg_ctl): install the server package "
                "(Debian: postgresql) or set PG_BINDIR"
            )
        if os.geteuid() == 0:
            import pwd

            try:
                pwd.getpwnam("postgres")
            except KeyError:
                return "running as root without a 'postgres' user to run initdb as"
            if not shutil.which("runuser"):
                return "running as root without runuser (util-linux) to run initdb as postgres"
        return None

    def _as_owner(self, argv: list[str]) -> list[str]:
        if os.geteuid() == 0:
            return ["runuser", "-u", "postgres", "--", *argv]
        return argv

    def _run(self, *args: str, timeout: float = 90.0) -> str:
        result = subprocess.run(
            self._as_owner([str(self.bindir / args[0]), *args[1:]]),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8"},
        )
        if result.returncode != 0:
            raise FleetError(
                f"private PostgreSQL: {args[0]} {' '.join(args[1:2])} failed:\n"
                f"{result.stdout[-1500:]}{result.stderr[-1500:]}"
            )
        return result.stdout

    # --- lifecycle ----------------------------------------------------------------------------

    @property
    def data(self) -> Path:
        assert self.dir is not None, "create() first"
        return self.dir / "data"

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def create(self) -> PrivatePostgres:
        """initdb and start; returns self."""
        import tempfile

        self.dir = Path(tempfile.mkdtemp(prefix="ispsupport-pg-"))
        if os.geteuid() == 0:
            import pwd

            owner = pwd.getpwnam("postgres")
            os.chown(self.dir, owner.pw_uid, owner.pw_gid)
        self.dir.chmod(0o700)
        self._run(
            "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
            "-E", "UTF8", "--locale=C.UTF-8", "--no-sync",
        )  # fmt: skip
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                "\n# ispsupport: a private server for fault tests (deploy/fleet.py)\n"
                f"port = {self.port}\n"
                "listen_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.dir}'\n"
                "max_connections = 200\n"
                "logging_collector = off\n"
            )
            for name, value in self.settings.items():
                conf.write(f"{name} = {value}\n")
        self.start()
        return self

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.dir / "server.log"), "-w",
                  "-t", "60", "start")  # fmt: skip
        self.started = True

    def stop(self, mode: str = "fast") -> None:
        """``fast``: clients are disconnected, open transactions roll back (a clean restart);
        ``immediate``: like a crash (recovery from the WAL at the next start)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")
        self.started = False

    def restart(self, mode: str = "fast") -> None:
        self.stop(mode)
        self.start()

    def is_accepting(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False

    def remove(self) -> None:
        """Stop the server (if running) and delete its folder. Safe to call twice."""
        if self.dir is None:
            return
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(FleetError, subprocess.TimeoutExpired):
                self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None
        self.started = False

    def __enter__(self) -> PrivatePostgres:
        return self.create()

    def __exit__(self, *exc: object) -> None:
        self.remove()


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@contextlib.contextmanager
def running(config: FleetConfig, timeout: float = 180.0) -> Iterator[Fleet]:
    """``with running(config) as fleet:``: started, and stopped whatever happens."""
    fleet = Fleet(config)
    fleet.start(timeout=timeout)
    try:
        yield fleet
    finally:
        fleet.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m deploy.fleet", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("command", choices=["start", "stop", "status"])
    parser.add_argument("--timeout", type=float, default=180.0)
    args = parser.parse_args(argv)
    config = FleetConfig.from_env()
    if args.command == "start":
        fleet = Fleet(config)
        try:
            fleet.start(timeout=args.timeout)
        except FleetError as exc:
            print(f"prod-local: {exc}", file=sys.stderr)
            return 1
        print(f"ispsupport fleet at {fleet.url}/  (logs and pids: {fleet.var_dir})")
        for name, status in fleet.status().items():
            print(f"  {name:16} {status}")
        print("stop it with: make prod-local-stop")
        # The processes run in their own sessions and outlive this command.
        for process in fleet.processes.values():
            process.handle = None
        return 0
    if not (config.var_dir / "state.json").exists():
        print(f"prod-local: no fleet running from {config.var_dir}")
        return 0
    fleet = Fleet.attach(config.var_dir)
    if args.command == "status":
        for name, status in fleet.status().items():
            print(f"  {name:16} {status}")
        return 0
    for name, how in fleet.stop(timeout=args.timeout if args.timeout < 180 else 30.0).items():
        print(f"  {name:16} {how}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

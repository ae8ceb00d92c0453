"""The deployment files agree with each other and with the settings (no servers needed).

Procfile, deploy/docker-compose.yml and deploy/fleet.py (``make prod-local``) must run the same
roles with the same commands; every Celery queue the settings route to has exactly one worker;
each Redis role has its eviction policy; the balancer routes ``/ws/`` to daphne without sticky
sessions; the database connections the compose file can open fit PostgreSQL's limit. Images
cannot be built here (no registry), so the Dockerfile is checked as text, and ``nginx -t`` and
``docker-compose config`` run when those tools are installed (CI installs nginx).
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from django.conf import settings

from deploy import fleet

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)


def _procfile() -> dict[str, list[str]]:
    roles = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, command = line.partition(":")
            roles[name.strip()] = shlex.split(command)
    return roles


def _option(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1]


def _without_values(argv: list[str], *flags: str) -> list[str]:
    """The command with the values of ``flags`` blanked (concurrency, ports, paths differ)."""
    out = list(argv)
    for flag in flags:
        if flag in out:
            out[out.index(flag) + 1] = "…"
    return out


def _default(value: str) -> str:
    """``${VAR:-x}`` → ``x`` (what the command runs with when VAR is unset)."""
    match = re.fullmatch(r"\$\{\w+:-([^}]*)\}", value)
    return match.group(1) if match else value


def test_every_routed_queue_has_exactly_one_worker_everywhere():
    routed = {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()}
    queues = routed | {settings.CELERY_TASK_DEFAULT_QUEUE}
    assert set(fleet.QUEUES) == queues

    procfile_queues = [_option(a, "-Q") for a in _procfile().values() if "worker" in a]
    compose_queues = [
        _option(s["command"], "-Q") for s in SERVICES.values() if "worker" in s.get("command", [])
    ]
    assert sorted(procfile_queues) == sorted(queues)
    assert sorted(compose_queues) == sorted(queues)
    for queue in queues:
        assert f"worker-{queue}" in SERVICES


def test_procfile_compose_and_local_fleet_run_the_same_commands():
    procfile = _procfile()
    web = fleet.web_command("python")
    assert procfile["web"] == web
    assert SERVICES["web"]["command"] == web

    ws = _without_values(fleet.ws_command(8001), "-p", "-b")
    assert _without_values(procfile["ws"], "-p", "-b") == ws
    assert _without_values(SERVICES["ws"]["command"], "-p", "-b") == ws

    for queue in fleet.QUEUES:
        expected = _without_values(fleet.worker_command(queue, 1), "-c")
        assert _without_values(procfile[f"worker_{queue}"], "-c") == expected
        assert _without_values(SERVICES[f"worker-{queue}"]["command"], "-c") == expected

    beat = _without_values(fleet.beat_command("x"), "-s")
    assert _without_values(procfile["beat"], "-s") == beat
    assert _without_values(SERVICES["beat"]["command"], "-s") == beat
    assert SERVICES["beat"].get("deploy", {}).get("replicas", 1) == 1  # one beat, ever

    assert procfile["release"] == ["python", "manage.py", "migrate", "--noinput"]
    assert SERVICES["migrate"]["command"] == ["python", "manage.py", "migrate", "--noinput"]


def test_balancer_ports_match_the_processes_behind_it():
    compose_nginx = (DEPLOY / "nginx" / "compose.conf").read_text()
    web_port = SERVICES["web"]["environment"]["PORT"]
    ws_port = _option(SERVICES["ws"]["command"], "-p")
    assert re.search(rf"upstream web \{{\s*server web:{web_port}\b", compose_nginx)
    assert re.search(rf"upstream ws \{{[^}}]*server ws:{ws_port}\b", compose_nginx)
    assert SERVICES["web"]["expose"] == [web_port]
    assert SERVICES["ws"]["expose"] == [ws_port]
    # Health checks call the processes with an allowed Host (Django answers 400 otherwise).
    for name in ("web", "ws"):
        assert "ALLOWED_HOSTS" in " ".join(SERVICES[name]["healthcheck"]["test"])
    assert "/balancer-health" in " ".join(SERVICES["nginx"]["healthcheck"]["test"])
    assert "location = /balancer-health" in compose_nginx
    # Only the balancer is published.
    assert [name for name, s in SERVICES.items() if s.get("ports")] == ["nginx"]
    mounts = SERVICES["nginx"]["volumes"]
    assert "./nginx/locations.conf:/etc/nginx/ispsupport/locations.conf:ro" in mounts
    assert "include /etc/nginx/ispsupport/locations.conf;" in compose_nginx


def test_balancer_routes_websockets_to_daphne_and_has_no_sticky_sessions():
    rules = (DEPLOY / "nginx" / "locations.conf").read_text()
    ws_block = re.search(r"location /ws/ \{([^}]*)\}", rules).group(1)
    assert "proxy_pass http://ws;" in ws_block
    assert "proxy_set_header Upgrade $http_upgrade;" in rules
    assert "proxy_set_header Connection $connection_upgrade;" in rules
    root_block = re.search(r"location / \{([^}]*)\}", rules).group(1)
    assert "proxy_pass http://web;" in root_block
    # The client address the application trusts is the one nginx appends.
    assert "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;" in rules
    assert SERVICES["web"]["environment"]["TRUSTED_PROXY_COUNT"] == "1"
    for path in [DEPLOY / "nginx" / "compose.conf", DEPLOY / "nginx" / "locations.conf"]:
        code = "\n".join(line.split("#")[0] for line in path.read_text().splitlines())
        assert not re.search(r"\b(ip_hash|sticky|hash \$)", code), path
    # No location sets its own proxy headers (that would drop the shared ones).
    for block in re.findall(r"location [^{]+\{([^}]*)\}", rules):
        assert "proxy_set_header" not in block


def test_redis_roles_have_their_eviction_policies_and_urls():
    def conf(role: str) -> dict[str, str]:
        pairs = {}
        for line in (DEPLOY / "redis" / f"{role}.conf").read_text().splitlines():
            if line.strip() and not line.startswith("#"):
                key, _, value = line.partition(" ")
                pairs[key] = value.strip()
        return pairs

    cache, broker, channels = conf("cache"), conf("broker"), conf("channels")
    assert cache["maxmemory-policy"] == "allkeys-lru"
    assert broker["maxmemory-policy"] == "noeviction"
    assert channels["maxmemory-policy"] == "noeviction"
    for role in (cache, broker, channels):
        assert re.fullmatch(r"\d+[kmg]b", role["maxmemory"])  # bounded: alerts have a ceiling
    assert broker["appendonly"] == "yes"  # queued tasks survive a restart

    env = SERVICES["web"]["environment"]
    assert env["CACHE_REDIS_URL"].startswith("redis://redis-cache:")
    assert env["CELERY_BROKER_URL"].startswith("redis://redis-broker:")
    assert env["CHANNEL_REDIS_URL"].startswith("redis://redis-channels:")
    for role in ("cache", "broker", "channels"):
        volumes = SERVICES[f"redis-{role}"]["volumes"]
        assert f"./redis/{role}.conf:/usr/local/etc/redis/redis.conf:ro" in volumes


def test_database_connections_of_the_compose_fleet_fit_postgres():
    """processes × DB_POOL_MAX_SIZE, over every role, stays under max_connections − 20."""
    command = SERVICES["postgres"]["command"]
    setting = next(arg for arg in command if arg.startswith("max_connections="))
    max_connections = int(setting.split("=", 1)[1])
    total = 0
    for name, service in SERVICES.items():
        env = service.get("environment") or {}
        if "DB_POOL_MAX_SIZE" not in env or name == "migrate":
            continue
        pool = int(env["DB_POOL_MAX_SIZE"])
        replicas = int(service.get("deploy", {}).get("replicas", 1))
        argv = service["command"]
        if name == "web":
            processes = int(_default(env["WEB_CONCURRENCY"]))
        elif "worker" in argv:
            processes = int(_option(argv, "-c"))
        else:
            processes = 1
        total += replicas * processes * pool
    assert max_connections == 100
    assert total <= max_connections - 20, total


def test_dockerfile_is_slim_non_root_and_collects_static_files():
    text = (DEPLOY / "Dockerfile").read_text()
    instructions = [line for line in text.splitlines() if line and not line.startswith(("#", " "))]
    assert instructions[0].startswith("FROM python:3.11-slim")
    users = [line for line in instructions if line.startswith("USER ")]
    assert users and users[-1] != "USER root"
    last_user = max(i for i, line in enumerate(instructions) if line.startswith("USER "))
    assert not [line for line in instructions[last_user:] if line.startswith("RUN ")]
    assert "manage.py collectstatic" in text
    requirements = (ROOT / "requirements.txt").read_text()
    for package in ("gunicorn", "daphne", "whitenoise"):
        assert re.search(rf"^{package}==\d", requirements, re.M), package
    assert "whitenoise.middleware.WhiteNoiseMiddleware" in settings.MIDDLEWARE
    ignored = (ROOT / ".dockerignore").read_text().split()
    for path in (".git", ".venv", "var/", ".env", "*.sqlite3"):
        assert path in ignored


def _nginx_test(tmp_path: Path, http_block: str) -> subprocess.CompletedProcess:
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\n"
        f"events {{ worker_connections 64; }}\nhttp {{\n"
        f"client_body_temp_path {tmp_path}/c; proxy_temp_path {tmp_path}/p;\n"
        f"fastcgi_temp_path {tmp_path}/f; uwsgi_temp_path {tmp_path}/u; scgi_temp_path {tmp_path}/s;\n"
        f"access_log off;\n{http_block}\n}}\n"
    )
    return subprocess.run(
        [NGINX, "-t", "-p", f"{tmp_path}/", "-c", str(conf)],
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.mark.skipif(NGINX is None, reason="nginx is not installed (apt-get install nginx-light)")
def test_nginx_accepts_the_compose_config(tmp_path):
    compose = (DEPLOY / "nginx" / "compose.conf").read_text()
    # Service names only resolve inside compose's network; the syntax is what is tested here.
    compose = re.sub(r"server (web|ws):", "server 127.0.0.1:", compose)
    compose = compose.replace(
        "/etc/nginx/ispsupport/locations.conf", str(DEPLOY / "nginx" / "locations.conf")
    )
    compose = compose.replace("listen 80 default_server;", "listen 127.0.0.1:1 default_server;")
    compose = compose.replace("/dev/stdout", f"{tmp_path}/access.log")
    result = _nginx_test(tmp_path, compose)
    assert result.returncode == 0, result.stderr


def test_local_balancer_passes_more_sockets_than_a_ws_process_holds(tmp_path):
    # bench/ws_capacity.py --through-balancer: with worker_connections 4096 nginx refused the
    # 2,048th socket ("worker_connections are not enough") while daphne alone held 4,000.
    import resource

    config = fleet.FleetConfig(var_dir=tmp_path, web_ports=[8101], ws_ports=[8201])
    rendered = fleet.Fleet(config).render_nginx()
    connections = int(re.search(r"worker_connections (\d+);", rendered).group(1))
    files = int(re.search(r"worker_rlimit_nofile (\d+);", rendered).group(1))
    assert "worker_processes 1;" in rendered
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and hard < 2 * 4000 + 1024:
        pytest.skip(f"open-files hard limit {hard} is below what 4,000 sockets need")
    assert connections >= 2 * 4000 + 256  # two connections per socket, and room for HTTP
    assert files > connections


@pytest.mark.skipif(NGINX is None, reason="nginx is not installed (apt-get install nginx-light)")
def test_nginx_accepts_the_local_fleet_config(tmp_path):
    config = fleet.FleetConfig(var_dir=tmp_path, web_ports=[1, 2], ws_ports=[3], balancer_port=4)
    rendered = fleet.Fleet(config).render_nginx()
    conf = tmp_path / "nginx.conf"
    conf.write_text(rendered.replace("daemon off;\n", ""))
    for sub in ("logs", "nginx/tmp"):
        (tmp_path / sub).mkdir(parents=True)
    result = subprocess.run(
        [NGINX, "-t", "-p", f"{tmp_path}/", "-c", str(conf)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert "server 127.0.0.1:1 " in rendered and "server 127.0.0.1:2 " in rendered
    assert "server 127.0.0.1:3 " in rendered


@pytest.mark.skipif(
    not shutil.which("docker-compose"), reason="docker-compose is not installed (validation only)"
)
def test_docker_compose_accepts_the_file(tmp_path):
    env = tmp_path / ".env"
    lines = (DEPLOY / "env.example").read_text().splitlines()
    env.write_text("\n".join(re.sub(r"^(\w+)=$", r"\1=placeholder", line) for line in lines))
    result = subprocess.run(
        [
            "docker-compose",
            "-f",
            str(DEPLOY / "docker-compose.yml"),
            "--env-file",
            str(env),
            "config",
            "-q",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    empty = tmp_path / "empty.env"
    empty.write_text("")
    missing = subprocess.run(
        [
            "docker-compose",
            "-f",
            str(DEPLOY / "docker-compose.yml"),
            "--env-file",
            str(empty),
            "config",
            "-q",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode != 0  # a missing secret stops compose before anything starts
    assert "set " in missing.stderr

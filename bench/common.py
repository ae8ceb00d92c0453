"""What the database benchmarks share: a production-like Django in-process, the bench agents,
customers inserted with COPY, percentiles and the machine-wide benchmark lock.

Import it first and call ``setup_django`` before importing any app module.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Heavy runs share two cores: every bench step that fills or measures holds this lock
# (``flock /work/bench.lock`` takes the same one), and releases it between steps.
LOCK_PATH = os.environ.get("BENCH_LOCK", "/work/bench.lock")


def _production_like_env() -> None:
    """DEBUG off (cached templates, no query log), with the development secrets as values."""
    import importlib

    os.environ["DEBUG"] = "1"
    dev = dict(importlib.import_module("ispsupport.settings")._DEV_SECRETS)
    for name in [m for m in sys.modules if m == "ispsupport.settings"]:
        del sys.modules[name]
    for key, value in dev.items():
        os.environ.setdefault(key, value)
    os.environ.update(
        DEBUG="0",
        ALLOWED_HOSTS="127.0.0.1,localhost,testserver",
        SECURE_SSL_REDIRECT="0",
        SECURE_HSTS_SECONDS="0",
    )


def setup_django(*, database_url: str, redis_url: str) -> None:
    """Django on ``database_url`` with Celery eager and no auto-assignment; DEBUG off unless
    BENCH_DEBUG=1."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ispsupport.settings")
    os.environ["DATABASE_URL"] = database_url
    os.environ["REDIS_URL"] = redis_url
    os.environ["CELERY_TASK_ALWAYS_EAGER"] = "1"
    os.environ["AUTO_ASSIGN"] = "0"
    os.environ["LOG_LEVEL"] = "WARNING"
    if os.environ.get("BENCH_DEBUG") != "1":
        _production_like_env()
    import django

    django.setup()


@contextlib.contextmanager
def bench_lock(what: str):
    """Hold the machine-wide benchmark lock for one step (blocks while another holds it)."""
    with open(LOCK_PATH, "a") as handle:
        print(f"  … waiting for {LOCK_PATH} ({what})", flush=True)
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    index = min(len(values) - 1, max(0, round(q / 100 * (len(values) - 1))))
    return values[index]


def time_get(client: Any, url: str, n: int) -> list[float]:
    """Server time in ms of ``n`` GETs of ``url`` through the whole middleware stack (Django's
    test client, in-process), after one warm-up; each must answer 200."""
    client.get(url)  # warm-up
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        response = client.get(url)
        samples.append((time.perf_counter() - t0) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    return samples


def fmt(values: list[float]) -> str:
    return (
        f"p50 {pct(values, 50):7.2f} ms   p99 {pct(values, 99):7.2f} ms   "
        f"max {max(values):7.2f} ms   (n={len(values)})"
    )


def copy_rows(table: str, columns: list[str], rows: Any) -> None:
    """COPY ``rows`` (tuples in ``columns`` order) into ``table`` on Django's connection."""
    from django.db import connection

    with connection.cursor() as cursor:
        raw = cursor.cursor
        with raw.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)


def bench_agents(count: int, *, max_concurrent: int = 50) -> tuple[Any, list[Any]]:
    """The team ``suporte`` and ``count`` online agents ``bench000``… in it (created once)."""
    from django.contrib.auth.models import Group

    from accounts.models import Team, User

    team, _ = Team.objects.get_or_create(slug="suporte", defaults={"name": "Suporte técnico"})
    agent_group = Group.objects.get(name="agent")
    existing = set(
        User.objects.filter(username__startswith="bench").values_list("username", flat=True)
    )
    password = User(username="x").password  # unusable; sessions are created directly
    User.objects.bulk_create(
        [
            User(
                username=f"bench{i:03d}",
                email=f"bench{i:03d}@example.test",
                first_name=f"Agente {i:03d}",
                presence="online",
                password=password,
                max_concurrent_conversations=max_concurrent,
            )
            for i in range(count)
            if f"bench{i:03d}" not in existing
        ]
    )
    agents = list(User.objects.filter(username__startswith="bench").order_by("username"))
    for agent in agents:
        agent.groups.add(agent_group)
        agent.teams.add(team)
    return team, agents


CUSTOMER_COLUMNS = [
    "wa_id",
    "phone_e164",
    "name",
    "cpf",
    "contract_ref",
    "status",
    "metadata",
    "created_at",
    "updated_at",
    "parent_bsuid",
    "username",
    "wa_id_bidx",
    "phone_bidx",
    "name_bidx",
]


def copy_customers(numbers: Any, now: datetime) -> None:
    """COPY one customer per number ``i`` (phone +5511 9xxxxxxxx, name "Cliente i").

    COPY bypasses the ORM: the personal columns are encrypted and the blind indexes derived
    here, as the model's fields would (ispsupport.crypto).
    """
    from conversations.models import Customer
    from ispsupport.crypto import encrypt_str

    field = Customer._meta.get_field
    empty = encrypt_str("{}")

    def rows():
        for i in numbers:
            wa_id, phone, name = f"5511{900000000 + i}", f"+5511{900000000 + i}", f"Cliente {i:05d}"
            yield (
                encrypt_str(wa_id),
                encrypt_str(phone),
                encrypt_str(name),
                "",
                "",
                "active",
                empty,
                now,
                now,
                "",
                "",
                field("wa_id_bidx").compute(wa_id),
                field("phone_bidx").compute(phone),
                field("name_bidx").compute(name),
            )

    copy_rows("conversations_customer", CUSTOMER_COLUMNS, rows())

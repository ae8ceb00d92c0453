"""Every key we write to the cache expires (README "Redis by role").

The cache Redis evicts under pressure (allkeys-lru), but a key without a TTL lives until then
and crowds out the ones that matter; stale rate-limit or breaker state could then last forever.
So every cache write in our code states its lifetime. This scans our source (not tests, not
migrations) with ``ast``:

- Django cache writes (``cache.set/add/set_many/get_or_set/touch`` on ``cache``, ``caches[...]``
  or ``*.cache``) pass a timeout, and not ``None`` ("never expire");
- raw Redis writes (modules that use redis-py) set ``ex``/``px`` on ``SET``, and a function that
  ``INCR``/``HSET``/``LPUSH``… a key also ``EXPIRE``\\s it;
- Lua scripts that ``SET`` pass ``PX``/``EX``, and scripts that ``INCR``… also ``EXPIRE``.

``incr``/``decr`` on the Django cache are allowed: they never create a key (django-redis raises
on a missing one) and Redis keeps the TTL the key was created with. The end-to-end check on a
real Redis, after a webhook → bot → reply flow, is in ``tests/fleet/test_fleet.py``.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent
APPS = ("ispsupport", "accounts", "compliance", "conversations", "bot", "whatsapp", "deploy")

# method → (position of the timeout argument, keyword name)
DJANGO_WRITES = {"set": 2, "add": 2, "get_or_set": 2, "set_many": 1, "touch": 1}
REDIS_CREATING_WRITES = {
    "incr", "incrby", "incrbyfloat", "hset", "hincrby", "hsetnx", "lpush", "rpush", "sadd",
    "zadd", "zincrby", "setnx", "mset", "xadd",
}  # fmt: skip
REDIS_EXPIRES = {"expire", "pexpire", "expireat", "pexpireat"}


def _is_django_cache(node: ast.expr) -> bool:
    if isinstance(node, ast.Name):
        return node.id == "cache"
    if isinstance(node, ast.Attribute):
        return node.attr == "cache"
    if isinstance(node, ast.Subscript):
        return isinstance(node.value, ast.Name) and node.value.id == "caches"
    return False


def _timeout_arg(call: ast.Call, position: int) -> ast.expr | None:
    for keyword in call.keywords:
        if keyword.arg == "timeout":
            return keyword.value
    return call.args[position] if len(call.args) > position else None


def _uses_redis_py(tree: ast.Module) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(
            a.name.split(".")[0] == "redis" for a in node.names
        ):
            return True
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in {
            "redis",
            "django_redis",
        }:
            return True
    return False


def _lua_problems(text: str) -> list[str]:
    problems = []
    calls = re.findall(r"redis\.call\(\s*'(\w+)'([^\n]*)", text)  # one call per line
    commands = {name.upper() for name, _ in calls}
    for name, args in calls:
        name = name.upper()
        if name == "SET" and not re.search(r"'(PX|EX|PXAT|EXAT|KEEPTTL)'", args, re.I):
            problems.append("Lua SET without PX/EX")
        if name.lower() in REDIS_CREATING_WRITES and not commands & {"EXPIRE", "PEXPIRE"}:
            problems.append(f"Lua {name} without EXPIRE in the script")
    return problems


def cache_writes_without_ttl(source: str, filename: str = "<source>") -> list[str]:
    """``["file:line: what"]`` for every write that could leave a key without a TTL."""
    tree = ast.parse(source, filename)
    problems: list[str] = []
    raw_redis = _uses_redis_py(tree)

    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and "redis.call" in node.value
        ):
            problems += [f"{filename}:{node.lineno}: {p}" for p in _lua_problems(node.value)]
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        method, receiver = node.func.attr, node.func.value
        if method in DJANGO_WRITES and _is_django_cache(receiver):
            timeout = _timeout_arg(node, DJANGO_WRITES[method])
            if timeout is None:
                problems.append(f"{filename}:{node.lineno}: cache.{method}() without a timeout")
            elif isinstance(timeout, ast.Constant) and timeout.value is None:
                problems.append(f"{filename}:{node.lineno}: cache.{method}(timeout=None)")
        elif (
            raw_redis
            and method == "set"
            and not _is_django_cache(receiver)
            and not {k.arg for k in node.keywords} & {"ex", "px", "exat", "pxat", "keepttl"}
        ):
            problems.append(f"{filename}:{node.lineno}: Redis SET without ex/px")

    if raw_redis:
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            methods = {
                (n.func.attr, n.lineno)
                for n in ast.walk(function)
                if isinstance(n, ast.Call)
                and isinstance(n.func, ast.Attribute)
                and not _is_django_cache(n.func.value)
            }
            names = {name for name, _ in methods}
            for name, line in sorted(methods, key=lambda m: m[1]):
                if name in REDIS_CREATING_WRITES and not names & REDIS_EXPIRES:
                    problems.append(f"{filename}:{line}: Redis {name.upper()} without EXPIRE")
    return problems


def _our_sources() -> list[Path]:
    files = []
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            parts = set(path.relative_to(ROOT).parts)
            if parts & {"tests", "migrations"}:
                continue
            files.append(path)
    return files


def test_every_cache_write_in_our_code_has_a_timeout():
    sources = _our_sources()
    assert len(sources) > 50  # the scan really walked the apps
    problems = []
    for path in sources:
        problems += cache_writes_without_ttl(path.read_text(), str(path.relative_to(ROOT)))
    assert problems == []


def test_the_scan_finds_writes_that_never_expire():
    source = """
import redis
from django.core.cache import cache, caches

def bad(client):
    cache.set("a", 1)
    cache.set("b", 1, None)
    caches["default"].add("c", 1, timeout=None)
    cache.set_many({"d": 1})
    cache.get_or_set("e", 1)
    client.set("f", 1)
    client.incr("g")

def good(client, pipe):
    cache.set("a", 1, 60)
    cache.add("b", 1, timeout=5)
    cache.incr("a")
    client.set("f", 1, ex=10)
    pipe.incr("g")
    pipe.expire("g", 10)

LUA = "redis.call('SET', KEYS[1], ARGV[1])"
LUA_OK = "redis.call('SET', KEYS[1], ARGV[1], 'PX', 100)"
"""
    problems = cache_writes_without_ttl(source, "x.py")
    lines = sorted(int(p.split(":")[1]) for p in problems)
    assert lines == [6, 7, 8, 9, 10, 11, 12, 22], problems


def test_the_cache_default_timeout_is_never_unbounded():
    for alias, config in settings.CACHES.items():
        assert config.get("TIMEOUT", 300) is not None, alias

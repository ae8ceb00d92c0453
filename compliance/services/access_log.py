"""The personal-data access log: append-only, hash-chained (issue 6).

Call ``access_log_record`` from every selector or view that reveals a customer's personal
data (conversation page, customer page, media download, export download, API reads);
``access_log_record_once`` for views that repeat the same reading every few seconds (a page's
live partials, an integration polling the API), and ``AccessLoggedAdminMixin``
(``compliance.admin_mixins``) for admin pages.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone

from compliance.models import AccessLogCheckpoint, AccessLogEntry

logger = logging.getLogger(__name__)

GENESIS_HASH = "0" * 64
# Any constant: serialises appends on PostgreSQL so two writers never chain to the same row.
_ADVISORY_LOCK_KEY = 746_500_601


def _canonical(entry: AccessLogEntry) -> bytes:
    content = {
        "created_at": entry.created_at.astimezone(UTC).isoformat(),
        "user_id": str(entry.user_id) if entry.user_id else None,
        "username": entry.username,
        "customer_id": entry.customer_id,
        "team_id": entry.team_id,
        "action": entry.action,
        "object_type": entry.object_type,
        "object_id": entry.object_id,
        "ip": entry.ip,
        "prev_hash": entry.prev_hash,
    }
    return json.dumps(content, sort_keys=True, separators=(",", ":")).encode()


def access_log_hash(entry: AccessLogEntry) -> str:
    return hashlib.sha256(_canonical(entry)).hexdigest()


def _last_hash() -> str:
    """The hash the next row chains to: the last row's, else the last checkpoint's (retention
    removed every row), else the genesis. One query whatever the table holds, so a page that
    writes the log costs the same on its first view as on later ones."""
    qn = connection.ops.quote_name
    entries, checkpoints = AccessLogEntry._meta.db_table, AccessLogCheckpoint._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT COALESCE("  # noqa: S608 (table and column names only)
            f"(SELECT {qn('row_hash')} FROM {qn(entries)} ORDER BY {qn('id')} DESC LIMIT 1), "
            f"(SELECT {qn('last_removed_hash')} FROM {qn(checkpoints)} "
            f"ORDER BY {qn('last_removed_id')} DESC LIMIT 1))"
        )
        (last,) = cursor.fetchone()
    return last or GENESIS_HASH


def access_log_record(
    *,
    user: Any,
    customer_id: int | None,
    action: str,
    ip: str | None = None,
    object_type: str = "",
    object_id: Any = "",
    team_id: int | None = None,
    now: datetime | None = None,
) -> AccessLogEntry:
    """Append one row: ``user`` revealed ``customer_id``'s data by ``action`` from ``ip``.

    ``action`` is an ``AccessLogEntry.Action`` value; ``team_id`` is the team of the
    conversation shown (supervisors see their teams' rows). Runs in its own atomic block and
    serialises appends (PostgreSQL advisory lock; SQLite's write lock), so the chain never forks.
    """
    if action not in AccessLogEntry.Action.values:
        raise ValueError(f"unknown access-log action {action!r}")
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_ADVISORY_LOCK_KEY])
        entry = AccessLogEntry(
            created_at=now or timezone.now(),
            user=user if getattr(user, "pk", None) else None,
            username=(getattr(user, "username", "") or "")[:150],
            customer_id=customer_id,
            team_id=team_id,
            action=action,
            object_type=object_type[:50],
            object_id=str(object_id or "")[:64],
            ip=ip or None,
            prev_hash=_last_hash(),
        )
        entry.row_hash = access_log_hash(entry)
        entry.save()
    return entry


def access_log_record_once(
    *,
    user: Any,
    customer_id: int | None,
    action: str,
    object_type: str,
    object_id: Any,
    ip: str | None = None,
    team_id: int | None = None,
) -> AccessLogEntry | None:
    """``access_log_record`` unless this user revealed this object by this action in the last
    ``ACCESS_LOG_REPEAT_SECONDS`` (then None): the first row stands for the whole reading, and
    a timeline refreshed on every live event does not write a row each time. Without the cache
    (unreachable) every call records: the log may repeat, never miss."""
    window = int(getattr(settings, "ACCESS_LOG_REPEAT_SECONDS", 300))
    if window > 0:
        key = f"accesslog:seen:{getattr(user, 'pk', '')}:{action}:{object_type}:{object_id}"
        try:
            if not cache.add(key, 1, timeout=window):
                return None
        except Exception:
            logger.warning("access log: cache unavailable, recording a repeated view")
    return access_log_record(
        user=user,
        customer_id=customer_id,
        action=action,
        ip=ip,
        object_type=object_type,
        object_id=object_id,
        team_id=team_id,
    )


def access_log_mark_seen(*, user: Any, action: str, object_type: str, object_id: Any) -> None:
    """After an explicit ``access_log_record``: repeats within the window need no new row."""
    window = int(getattr(settings, "ACCESS_LOG_REPEAT_SECONDS", 300))
    if window > 0:
        key = f"accesslog:seen:{getattr(user, 'pk', '')}:{action}:{object_type}:{object_id}"
        try:
            cache.set(key, 1, timeout=window)
        except Exception:
            logger.warning("access log: cache unavailable")


@dataclass(frozen=True)
class ChainProblem:
    entry_id: int
    problem: str


def access_log_verify(*, batch_size: int = 2000) -> tuple[int, list[ChainProblem]]:
    """Walk the chain in id order; return ``(rows checked, problems)``.

    A row whose content no longer matches its hash was edited; a row whose ``prev_hash`` is not
    the previous row's hash follows a removed or edited row.
    """
    checkpoint = AccessLogCheckpoint.objects.order_by("-last_removed_id").first()
    expected_prev = checkpoint.last_removed_hash if checkpoint else GENESIS_HASH
    problems: list[ChainProblem] = []
    checked = 0
    last_id = checkpoint.last_removed_id if checkpoint else 0
    while True:
        rows = list(AccessLogEntry.objects.filter(pk__gt=last_id).order_by("pk")[:batch_size])
        if not rows:
            break
        for row in rows:
            checked += 1
            if row.prev_hash != expected_prev:
                problems.append(ChainProblem(row.pk, "prev_hash does not match the previous row"))
            if access_log_hash(row) != row.row_hash:
                problems.append(ChainProblem(row.pk, "content does not match its hash"))
            expected_prev = row.row_hash
            last_id = row.pk
    return checked, problems


def access_log_purge_before(*, cutoff: datetime, batch_size: int, dry_run: bool) -> int:
    """Remove rows older than ``cutoff`` (retention), oldest first, keeping the chain verifiable
    through a checkpoint with the last removed row's hash."""
    if dry_run:
        return _purgeable_prefix_count(cutoff)
    removed = 0
    while True:
        with transaction.atomic():
            head = list(
                AccessLogEntry.objects.order_by("pk").values_list("pk", "row_hash", "created_at")[
                    :batch_size
                ]
            )
            batch = _prefix_before(head, cutoff)
            if not batch:
                break
            last_id, last_hash, _created = batch[-1]
            # Only a prefix of the chain may go: never leave a hole in the middle.
            AccessLogEntry.objects.filter(pk__lte=last_id)._raw_delete(using="default")
            AccessLogCheckpoint.objects.create(
                last_removed_id=last_id, last_removed_hash=last_hash, removed_count=len(batch)
            )
            removed += len(batch)
        if len(batch) < len(head):
            break
    return removed


def _prefix_before(rows: list[tuple[Any, ...]], cutoff: datetime) -> list[tuple[Any, ...]]:
    prefix = []
    for row in rows:
        if row[2] >= cutoff:
            break
        prefix.append(row)
    return prefix


def _purgeable_prefix_count(cutoff: datetime) -> int:
    first_kept = (
        AccessLogEntry.objects.filter(created_at__gte=cutoff)
        .order_by("pk")
        .values_list("pk", flat=True)
        .first()
    )
    qs = AccessLogEntry.objects.all()
    if first_kept is not None:
        qs = qs.filter(pk__lt=first_kept)
    return qs.count()

"""Backups: a consistent PostgreSQL dump plus the media files, with a manifest, and the restore.

A backup is a directory ``ispsupport-backup-<UTC time>/`` holding:

- ``database.dump``: ``pg_dump --format=custom`` taken inside an exported snapshot
  (``pg_export_snapshot`` in a REPEATABLE READ transaction, then ``pg_dump --snapshot``), so the
  row counts in the manifest are exactly the rows in the dump even while the fleet keeps
  writing;
- ``media.tar.gz``: every file under ``MEDIA_ROOT`` (attachments, exports), read after the
  snapshot: files of rows written after it may be in the archive, never the reverse, except a
  file erased between the snapshot and the archive (its row then points to nothing);
- ``manifest.json``: format, time, database and server version, latest migration per app, row
  count per table, SHA-256 and size of each file, and a key check: a value encrypted with the
  current ``FIELD_ENCRYPTION_KEYS``, so a restore refuses to run where the keys cannot read the
  data.

The dump holds personal data (encrypted fields stay encrypted; others do not): store backups
encrypted, with access as restricted as the database's. Restoring a backup older than an erasure
brings the erased customer back: re-run the erasures completed since the backup's time.

Restore: checksums first, the key check, then refuses a target database that has any table (or
a non-empty ``MEDIA_ROOT``) unless ``force``; ``pg_restore --single-transaction
--exit-on-error`` (all or nothing), the media extracted, and every table's row count compared
with the manifest.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tarfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connections

from ispsupport import crypto

FORMAT = "ispsupport-backup/1"
DUMP_NAME = "database.dump"
MEDIA_NAME = "media.tar.gz"
MANIFEST_NAME = "manifest.json"
KEY_CHECK_TEXT = "ispsupport backup key check"


class BackupError(Exception):
    """The backup or restore cannot go on; the message says why and what to do."""


@dataclass
class RestoreReport:
    tables: int = 0
    rows: int = 0
    media_files: int = 0
    mismatches: dict[str, tuple[int, int]] = field(default_factory=dict)


def _settings_dict(alias: str) -> dict[str, Any]:
    connection = connections[alias]
    if connection.vendor != "postgresql":
        raise BackupError(
            "backups need PostgreSQL (DATABASE_URL=postgres://…); the embedded SQLite file is "
            "copied as a file"
        )
    return connection.settings_dict


def _conninfo(params: dict[str, Any], *, with_password: bool = True) -> str:
    from psycopg.conninfo import make_conninfo

    values = {
        "dbname": params["NAME"],
        "user": params.get("USER") or None,
        "host": params.get("HOST") or None,
        "port": str(params["PORT"]) if params.get("PORT") else None,
        "password": (params.get("PASSWORD") or None) if with_password else None,
    }
    return make_conninfo(**{k: v for k, v in values.items() if v})


def _pg_env(params: dict[str, Any]) -> dict[str, str]:
    """The environment of pg_dump/pg_restore: the password travels here, not in argv."""
    env = dict(os.environ)
    if params.get("PASSWORD"):
        env["PGPASSWORD"] = str(params["PASSWORD"])
    return env


def _tool(name: str) -> str:
    path = shutil.which(name)
    if not path:
        raise BackupError(f"{name} is not installed (Debian: apt-get install postgresql-client)")
    return path


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _user_tables(cursor: Any) -> list[tuple[str, str]]:
    cursor.execute(
        "SELECT schemaname, tablename FROM pg_tables "
        "WHERE schemaname NOT IN ('pg_catalog', 'information_schema') "
        "AND schemaname NOT LIKE 'pg_toast%%' ORDER BY schemaname, tablename"
    )
    return [(schema, table) for schema, table in cursor.fetchall()]


def _count_rows(cursor: Any) -> dict[str, int]:
    from psycopg import sql

    counts = {}
    for schema, table in _user_tables(cursor):
        cursor.execute(
            sql.SQL("SELECT count(*) FROM {}.{}").format(
                sql.Identifier(schema), sql.Identifier(table)
            )
        )
        label = table if schema == "public" else f"{schema}.{table}"
        counts[label] = cursor.fetchone()[0]
    return counts


def _archive_media(media_root: Path, target: Path) -> tuple[int, int]:
    files = size = 0
    with tarfile.open(target, "w:gz") as archive:
        if media_root.is_dir():
            for path in sorted(p for p in media_root.rglob("*") if p.is_file()):
                archive.add(path, arcname=str(path.relative_to(media_root)), recursive=False)
                files += 1
                size += path.stat().st_size
    return files, size


def backup_create(
    *, output_dir: Path, alias: str = "default", media_root: Path | None = None
) -> Path:
    """Write a backup under ``output_dir``; returns its directory. Raises ``BackupError``."""
    import psycopg

    params = _settings_dict(alias)
    pg_dump = _tool("pg_dump")
    media_root = Path(media_root or settings.MEDIA_ROOT)
    created = datetime.now(UTC)
    target = Path(output_dir) / f"ispsupport-backup-{created:%Y%m%dT%H%M%SZ}"
    if target.exists():
        raise BackupError(f"{target} already exists")
    target.mkdir(parents=True)
    target.chmod(0o700)  # personal data inside

    with psycopg.connect(_conninfo(params), autocommit=False) as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        with conn.cursor() as cursor:
            cursor.execute("SELECT pg_export_snapshot(), current_setting('server_version')")
            snapshot, server_version = cursor.fetchone()
            counts = _count_rows(cursor)
            cursor.execute("SELECT app, max(name) FROM django_migrations GROUP BY app ORDER BY app")
            migrations = dict(cursor.fetchall())
            # The snapshot lives as long as this transaction: pg_dump runs inside it.
            result = subprocess.run(  # noqa: S603 - our argv, no shell
                [
                    pg_dump,
                    "--format=custom",
                    f"--snapshot={snapshot}",
                    "--no-owner",
                    "--no-privileges",
                    f"--file={target / DUMP_NAME}",
                    f"--dbname={_conninfo(params, with_password=False)}",
                ],
                env=_pg_env(params),
                capture_output=True,
                text=True,
                check=False,
            )
        conn.rollback()
    if result.returncode != 0:
        raise BackupError(f"pg_dump failed: {result.stderr.strip()[-2000:]}")
    media_files, media_bytes = _archive_media(media_root, target / MEDIA_NAME)

    version = subprocess.run(  # noqa: S603
        [pg_dump, "--version"], capture_output=True, text=True, check=False
    )
    manifest = {
        "format": FORMAT,
        "created_at": created.isoformat(),
        "database": params["NAME"],
        "server_version": server_version,
        "pg_dump": version.stdout.strip(),
        "snapshot": snapshot,
        "migrations": migrations,
        "tables": counts,
        "media": {"files": media_files, "bytes": media_bytes},
        "files": {
            name: {"sha256": _sha256(target / name), "bytes": (target / name).stat().st_size}
            for name in (DUMP_NAME, MEDIA_NAME)
        },
        "key_check": crypto.encrypt_str(KEY_CHECK_TEXT),
    }
    (target / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return target


def read_manifest(path: Path) -> dict[str, Any]:
    """The manifest of the backup in ``path``, after checking every file's checksum."""
    manifest_path = Path(path) / MANIFEST_NAME
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError) as exc:
        raise BackupError(f"{manifest_path} cannot be read: {exc}") from exc
    if manifest.get("format") != FORMAT:
        raise BackupError(f"unknown backup format {manifest.get('format')!r}")
    for name, expected in manifest["files"].items():
        file = Path(path) / name
        if not file.is_file():
            raise BackupError(f"{name} is missing from the backup")
        if _sha256(file) != expected["sha256"]:
            raise BackupError(f"{name} does not match its checksum: the backup is damaged")
    return manifest


def backup_restore(
    *, path: Path, force: bool = False, alias: str = "default", media_root: Path | None = None
) -> RestoreReport:
    """Restore the backup in ``path`` into the configured database and MEDIA_ROOT.

    Refuses (``BackupError``) a damaged backup, keys that cannot read it, and a target database
    with tables or a non-empty MEDIA_ROOT unless ``force`` (then the backup's tables replace
    those of the same name). The returned report lists tables whose row count differs from the
    manifest (none when the restore is faithful).
    """
    params = _settings_dict(alias)
    pg_restore = _tool("pg_restore")
    media_root = Path(media_root or settings.MEDIA_ROOT)
    manifest = read_manifest(path)
    try:
        if crypto.decrypt_str(manifest["key_check"]) != KEY_CHECK_TEXT:
            raise crypto.DecryptionError("key check text differs")
    except crypto.DecryptionError as exc:
        raise BackupError(
            "FIELD_ENCRYPTION_KEYS cannot decrypt this backup: configure the keys it was made "
            "with (newest first) before restoring"
        ) from exc

    connection = connections[alias]
    with connection.cursor() as cursor:
        existing = _user_tables(cursor)
    if existing and not force:
        raise BackupError(
            f"the database {params['NAME']!r} is not empty ({len(existing)} tables): restore "
            "into an empty database, or pass --force to replace its tables"
        )
    media_present = media_root.is_dir() and any(media_root.iterdir())
    if media_present and not force:
        raise BackupError(f"MEDIA_ROOT {media_root} is not empty: use an empty one, or --force")
    connections.close_all()

    command = [
        pg_restore,
        "--single-transaction",
        "--exit-on-error",
        "--no-owner",
        "--no-privileges",
        f"--dbname={_conninfo(params, with_password=False)}",
    ]
    if existing:
        command += ["--clean", "--if-exists"]
    result = subprocess.run(  # noqa: S603 - our argv, no shell
        [*command, str(Path(path) / DUMP_NAME)],
        env=_pg_env(params),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise BackupError(
            f"pg_restore failed (nothing was changed): {result.stderr.strip()[-2000:]}"
        )

    media_root.mkdir(parents=True, exist_ok=True)
    with tarfile.open(Path(path) / MEDIA_NAME, "r:gz") as archive:
        members = archive.getmembers()
        archive.extractall(media_root, filter="data")  # no absolute paths, links out, devices

    import psycopg

    with psycopg.connect(_conninfo(params)) as conn, conn.cursor() as cursor:
        restored = _count_rows(cursor)
    report = RestoreReport(
        tables=len(manifest["tables"]),
        rows=sum(manifest["tables"].values()),
        media_files=len([m for m in members if m.isfile()]),
    )
    for table, expected in manifest["tables"].items():
        found = restored.get(table, -1)
        if found != expected:
            report.mismatches[table] = (expected, found)
    return report

"""backup_create / backup_restore on PostgreSQL: a backup restores into an empty database with the
same rows, the same decrypted values and the same media files, and refuses what it must."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import psycopg
import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.db import connection

from conftest import on_postgres
from conversations.tests.factories import ConversationFactory, CustomerFactory, MessageFactory
from deploy.fleet import ensure_database
from ispsupport import backup, crypto, filecrypt
from whatsapp.models import WebhookEvent

ROOT = Path(__file__).resolve().parent.parent
needs_postgres = pytest.mark.skipif(
    not on_postgres(), reason="backups are pg_dump/pg_restore: PostgreSQL"
)


def _url(name: str) -> str:
    params = connection.settings_dict
    host = params.get("HOST") or "127.0.0.1"
    port = params.get("PORT") or 5432
    auth = params.get("USER") or "postgres"
    if params.get("PASSWORD"):
        auth += f":{params['PASSWORD']}"
    return f"postgres://{auth}@{host}:{port}/{name}"


def _restore(path: Path, database_url: str, media_root: Path, *extra: str):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(DATABASE_URL=database_url, MEDIA_ROOT=str(media_root))
    return subprocess.run(
        [sys.executable, "manage.py", "backup_restore", str(path), *extra],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def _counts(conninfo: str, tables: list[str]) -> dict[str, int]:
    with psycopg.connect(conninfo) as conn:
        return {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}  # noqa: S608


@pytest.fixture
def restore_database():
    url = _url(connection.settings_dict["NAME"] + "_restore")
    ensure_database(url, fresh=True)
    yield url
    parsed = urlparse(url)
    with psycopg.connect(parsed._replace(path="/postgres").geturl(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{parsed.path.lstrip("/")}" WITH (FORCE)')


@pytest.mark.postgres
@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_backup_restores_into_an_empty_database_with_the_same_rows_values_and_media(
    tmp_path, settings, restore_database
):
    settings.MEDIA_ROOT = tmp_path / "media"
    customer = CustomerFactory(name="Ana Souza")
    conversation = ConversationFactory(customer=customer)
    MessageFactory.create_batch(5, conversation=conversation)
    photo = b"\xff\xd8\xff\xe0 foto da ONU com a luz LOS vermelha"
    MessageFactory(
        conversation=conversation,
        type="image",
        media_file=ContentFile(photo, name="onu.jpg"),
    )
    raw = json.dumps({"object": "whatsapp_business_account", "entry": [{"id": "1"}]})
    event = WebhookEvent.objects.create(
        body=raw, body_sha256=hashlib.sha256(raw.encode()).hexdigest()
    )

    out = io.StringIO()
    call_command("backup_create", output=str(tmp_path / "backups"), stdout=out)
    path = Path(out.getvalue().strip().splitlines()[-1])
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["tables"]["conversations_message"] == 6
    assert manifest["tables"]["whatsapp_webhookevent"] == 1
    assert manifest["media"]["files"] == 1

    restored_media = tmp_path / "restored-media"
    result = _restore(path, restore_database, restored_media)
    assert result.returncode == 0, result.stderr
    assert "every count matches the manifest" in result.stdout

    tables = list(manifest["tables"])
    source = _counts(_url(connection.settings_dict["NAME"]), tables)
    assert _counts(restore_database, tables) == source == manifest["tables"]

    with psycopg.connect(restore_database) as conn:
        stored = conn.execute(
            "SELECT body FROM whatsapp_webhookevent WHERE id = %s", [event.pk]
        ).fetchone()[0]
        name = conn.execute(
            "SELECT name FROM conversations_customer WHERE id = %s", [customer.pk]
        ).fetchone()[0]
        (media_file,) = conn.execute(
            "SELECT media_file FROM conversations_message WHERE media_file <> ''"
        ).fetchone()
    assert crypto.looks_encrypted(stored)  # still encrypted at rest in the restored copy
    assert crypto.decrypt_str(stored) == raw
    assert crypto.looks_encrypted(name) and crypto.decrypt_str(name) == "Ana Souza"
    restored_file = restored_media / media_file  # encrypted at rest too (ispsupport.storage)
    assert restored_file.read_bytes().startswith(filecrypt.MAGIC)
    with filecrypt.DecryptingReader(restored_file.open("rb")) as plain:
        assert plain.read() == photo

    # Restoring again into what is now a full database: refused, then allowed with --force.
    again = _restore(path, restore_database, tmp_path / "empty-media")
    assert again.returncode != 0
    assert "not empty" in again.stderr
    forced = _restore(path, restore_database, restored_media, "--force")
    assert forced.returncode == 0, forced.stderr
    assert _counts(restore_database, tables) == manifest["tables"]


@pytest.mark.postgres
@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_restore_refuses_a_damaged_backup_and_keys_that_cannot_read_it(
    tmp_path, settings, restore_database
):
    settings.MEDIA_ROOT = tmp_path / "media"
    MessageFactory()
    path = backup.backup_create(output_dir=tmp_path / "backups")

    settings.FIELD_ENCRYPTION_KEYS = ["b3RoZXIta2V5LW90aGVyLWtleS1vdGhlci1rZXktMDA="]
    with pytest.raises(backup.BackupError, match="FIELD_ENCRYPTION_KEYS cannot decrypt"):
        backup.backup_restore(path=path)

    dump = path / "database.dump"
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0xFF
    dump.write_bytes(bytes(data))
    result = _restore(path, restore_database, tmp_path / "restored-media")
    assert result.returncode != 0
    assert "does not match its checksum" in result.stderr
    with psycopg.connect(restore_database) as conn:
        assert conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        ).fetchone() == (0,)


@pytest.mark.skipif(on_postgres(), reason="runs on the embedded SQLite default")
def test_backup_refuses_sqlite_with_a_clear_message(tmp_path):
    with pytest.raises(backup.BackupError, match="need PostgreSQL"):
        backup.backup_create(output_dir=tmp_path)

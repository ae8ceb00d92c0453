"""Restore a backup made by ``backup_create`` into the configured (empty) database.

    manage.py backup_restore PATH [--force]

Checks the checksums and that FIELD_ENCRYPTION_KEYS can read the backup, refuses a database
that has tables (or a non-empty MEDIA_ROOT) unless --force, restores in one transaction, extracts
the media and compares every table's row count with the manifest. Exit status 0 when all
match, 1 otherwise (with the reason). Stop the fleet's web, ws, workers and beat first.
"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from ispsupport import backup


class Command(BaseCommand):
    help = "Restore a backup_create backup into an empty database (counts checked)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("path", help="the backup's directory (ispsupport-backup-…)")
        parser.add_argument(
            "--force",
            action="store_true",
            help="restore into a database that has tables (they are replaced) and a non-empty MEDIA_ROOT",
        )

    def handle(self, *args, **options) -> None:
        try:
            report = backup.backup_restore(path=Path(options["path"]), force=options["force"])
        except backup.BackupError as exc:
            raise CommandError(str(exc)) from exc
        if report.mismatches:
            for table, (expected, found) in sorted(report.mismatches.items()):
                self.stderr.write(f"{table}: {found} rows, the backup has {expected}")
            raise CommandError(f"{len(report.mismatches)} tables differ from the manifest")
        self.stdout.write(
            self.style.SUCCESS(
                f"restored {report.tables} tables, {report.rows} rows, "
                f"{report.media_files} media files; every count matches the manifest"
            )
        )

"""Back up the PostgreSQL database (consistent snapshot) and the media files, with a manifest.

    manage.py backup_create [--output DIR]      # default: var/backups

Writes ``DIR/ispsupport-backup-<UTC time>/`` (database.dump, media.tar.gz, manifest.json) and
prints its path. Exit status 1 with the reason when it cannot (not PostgreSQL, pg_dump missing
or failing). See ``ispsupport.backup`` and README "Backups".
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from ispsupport import backup


class Command(BaseCommand):
    help = "Consistent PostgreSQL dump plus the media files, with a manifest (counts, checksums)."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--output", default=str(Path(settings.BASE_DIR) / "var" / "backups"), help="directory"
        )

    def handle(self, *args, **options) -> None:
        try:
            target = backup.backup_create(output_dir=Path(options["output"]))
        except backup.BackupError as exc:
            raise CommandError(str(exc)) from exc
        manifest = backup.read_manifest(target)
        rows = sum(manifest["tables"].values())
        self.stdout.write(
            f"{len(manifest['tables'])} tables, {rows} rows, "
            f"{manifest['media']['files']} media files"
        )
        self.stdout.write(self.style.SUCCESS(str(target)))

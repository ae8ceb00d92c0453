"""Re-encrypt every encrypted field, and every stored file, under the newest key of
FIELD_ENCRYPTION_KEYS.

Rotation: put a new key first in FIELD_ENCRYPTION_KEYS (keep the old ones after it), deploy,
run this command, then remove the old key. Rows already under the newest key are skipped, so
the command is resumable and safe to run again; each batch is one transaction with the rows
locked (``SELECT … FOR UPDATE``), so a concurrent write is never overwritten with stale data.

Files (customers' media, DSR exports: every file field on the encrypted storage,
``ispsupport.storage``) are re-encrypted too, each replaced atomically; files already under
the newest key are skipped, and files stored before encryption existed are encrypted.
``--no-files`` leaves them for a later run (they stay readable with the old key until then).

    manage.py rotate_encryption_keys [--batch-size 500] [--model app.Model] [--dry-run]
                                     [--no-files]

Exit status 0 when every value and file is under the newest key afterwards (or would be, with
--dry-run); 1 when some value or file could not be decrypted with any configured key.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from django.apps import apps
from django.core.management.base import BaseCommand, CommandError
from django.db import models, transaction
from django.db.models.functions import Cast

from ispsupport import crypto
from ispsupport.progress import progress_line
from ispsupport.storage import EncryptedFileSystemStorage


@dataclass
class Tally:
    rows: int = 0
    rotated: int = 0
    current: int = 0
    empty: int = 0
    failed: int = 0


@dataclass
class FileTally:
    files: int = 0
    rotated: int = 0
    encrypted: int = 0
    current: int = 0
    missing: int = 0
    failed: int = 0


def encrypted_file_fields(model: type[models.Model]) -> list[models.FileField]:
    """``model``'s file fields whose files live on the encrypted storage."""
    return [
        f
        for f in model._meta.concrete_fields
        if isinstance(f, models.FileField) and isinstance(f.storage, EncryptedFileSystemStorage)
    ]


class Command(BaseCommand):
    help = "Re-encrypt encrypted fields under the newest FIELD_ENCRYPTION_KEYS key (resumable)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--batch-size", type=int, default=500)
        parser.add_argument("--model", action="append", default=[], help="app_label.Model")
        parser.add_argument(
            "--dry-run", action="store_true", help="count what would change, write nothing"
        )
        parser.add_argument(
            "--no-files", action="store_true", help="rotate database values only, not files"
        )

    def handle(self, *args, **options) -> None:
        batch_size = max(1, options["batch_size"])
        wanted = {m.lower() for m in options["model"]}
        chosen = [m for m in apps.get_models() if not wanted or m._meta.label_lower in wanted]
        targets = [(m, crypto.encrypted_fields(m)) for m in chosen if crypto.encrypted_fields(m)]
        file_targets = (
            []
            if options["no_files"]
            else [(m, encrypted_file_fields(m)) for m in chosen if encrypted_file_fields(m)]
        )
        found = {m._meta.label_lower for m, _ in targets + file_targets}
        if wanted and found != wanted:
            raise CommandError(f"no encrypted fields in: {', '.join(sorted(wanted - found))}")
        failed_total = 0
        for model, fields in targets:
            tally = self._rotate_model(model, fields, batch_size, options["dry_run"])
            failed_total += tally.failed
            verb = "would rotate" if options["dry_run"] else "rotated"
            self.stdout.write(
                f"{model._meta.label}: {tally.rows} rows, {len(fields)} field(s); "
                f"{verb} {tally.rotated} value(s), {tally.current} already current, "
                f"{tally.empty} empty, {tally.failed} undecryptable"
            )
        for model, file_fields in file_targets:
            for field in file_fields:
                files = self._rotate_files(model, field, batch_size, options["dry_run"])
                failed_total += files.failed
                verb = "would rotate" if options["dry_run"] else "rotated"
                self.stdout.write(
                    f"{model._meta.label}.{field.name}: {files.files} file(s); "
                    f"{verb} {files.rotated}, {files.encrypted} stored before encryption "
                    f"{'would be ' if options['dry_run'] else ''}encrypted, "
                    f"{files.current} already current, {files.missing} missing, "
                    f"{files.failed} undecryptable"
                )
        if not targets and not file_targets:
            self.stdout.write("no model has encrypted fields")
        if failed_total:
            self.stderr.write(
                f"{failed_total} value(s) or file(s) could not be decrypted with any configured "
                "key: do not drop old keys yet (is a key missing from FIELD_ENCRYPTION_KEYS?)"
            )
            sys.exit(1)
        if not options["dry_run"] and targets:
            what = "value" if options["no_files"] else "value and file"
            self.stdout.write(self.style.SUCCESS(f"done: every {what} is under the newest key"))

    def _rotate_model(
        self, model: type[models.Model], fields: list[models.Field], batch_size: int, dry_run: bool
    ) -> Tally:
        tally = Tally()
        total = model._base_manager.count()
        raw_names = {f.attname: f"_raw_{f.attname}" for f in fields}
        annotations = {raw: Cast(attname, models.TextField()) for attname, raw in raw_names.items()}
        last_pk = None
        while True:
            with transaction.atomic():
                qs = model._base_manager.order_by("pk")
                if last_pk is not None:
                    qs = qs.filter(pk__gt=last_pk)
                pks = list(qs.values_list("pk", flat=True)[:batch_size])
                if not pks:
                    break
                locked = model._base_manager.filter(pk__in=pks).order_by("pk")
                if not dry_run:
                    locked = locked.select_for_update()
                rows = list(locked.annotate(**annotations).values("pk", *raw_names.values()))
                # Per field, the rows whose value must be rewritten (instances carry only that
                # value: bulk_update writes just the listed field).
                changed: dict[str, list[models.Model]] = {f.attname: [] for f in fields}
                for row in rows:
                    for field in fields:
                        raw = row[raw_names[field.attname]]
                        if raw is None or raw == "":
                            tally.empty += 1
                        elif crypto.is_current(raw):
                            tally.current += 1
                        else:
                            try:
                                plain = field.from_db_value(raw, None, None)
                            except crypto.DecryptionError:
                                tally.failed += 1
                                continue
                            instance = model(pk=row["pk"])
                            setattr(instance, field.attname, plain)
                            changed[field.attname].append(instance)
                            tally.rotated += 1
                if not dry_run:
                    for attname, instances in changed.items():
                        if instances:
                            model._base_manager.bulk_update(instances, [attname])
                tally.rows += len(rows)
                last_pk = rows[-1]["pk"]
            self._progress(model._meta.label, tally.rows, total)
        if total:
            self.stderr.write("", style_func=str)
        return tally

    def _rotate_files(
        self, model: type[models.Model], field: models.FileField, batch_size: int, dry_run: bool
    ) -> FileTally:
        """Walk the rows that name a file, by primary key, and rotate each file once."""
        tally = FileTally()
        with_file = model._base_manager.exclude(**{field.attname: ""}).exclude(
            **{f"{field.attname}__isnull": True}
        )
        total = with_file.count()
        label = f"{model._meta.label}.{field.name}"
        seen: set[str] = set()
        last_pk = None
        while True:
            qs = with_file.order_by("pk")
            if last_pk is not None:
                qs = qs.filter(pk__gt=last_pk)
            rows = list(qs.values_list("pk", field.attname)[:batch_size])
            if not rows:
                break
            for _pk, name in rows:
                tally.files += 1
                if name in seen:
                    tally.current += 1
                    continue
                seen.add(name)
                outcome = field.storage.rotate(name, dry_run=dry_run)
                setattr(tally, outcome, getattr(tally, outcome) + 1)
            last_pk = rows[-1][0]
            self._progress(label, tally.files, total)
        if total:
            self.stderr.write("", style_func=str)
        return tally

    def _progress(self, label: str, done: int, total: int) -> None:
        # On stderr, so stdout carries only the report (and can be kept as a record).
        self.stderr.write("\r" + progress_line(label, done, total), ending="", style_func=str)
        self.stderr.flush()

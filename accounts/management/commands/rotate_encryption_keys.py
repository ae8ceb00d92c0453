"""Re-encrypt every encrypted field under the newest key of FIELD_ENCRYPTION_KEYS.

Rotation: put a new key first in FIELD_ENCRYPTION_KEYS (keep the old ones after it), deploy,
run this command, then remove the old key. Rows already under the newest key are skipped, so
the command is resumable and safe to run again; each batch is one transaction with the rows
locked (``SELECT … FOR UPDATE``), so a concurrent write is never overwritten with stale data.

    manage.py rotate_encryption_keys [--batch-size 500] [--model app.Model] [--dry-run]

Exit status 0 when every value is under the newest key afterwards (or would be, with
--dry-run); 1 when some value could not be decrypted with any configured key.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from django.apps import apps
from django.core.management.base import BaseCommand, CommandError
from django.db import models, transaction
from django.db.models.functions import Cast

from ispsupport import crypto


@dataclass
class Tally:
    rows: int = 0
    rotated: int = 0
    current: int = 0
    empty: int = 0
    failed: int = 0


class Command(BaseCommand):
    help = "Re-encrypt encrypted fields under the newest FIELD_ENCRYPTION_KEYS key (resumable)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--batch-size", type=int, default=500)
        parser.add_argument("--model", action="append", default=[], help="app_label.Model")
        parser.add_argument(
            "--dry-run", action="store_true", help="count what would change, write nothing"
        )

    def handle(self, *args, **options) -> None:
        batch_size = max(1, options["batch_size"])
        wanted = {m.lower() for m in options["model"]}
        targets = [
            (model, crypto.encrypted_fields(model))
            for model in apps.get_models()
            if crypto.encrypted_fields(model) and (not wanted or model._meta.label_lower in wanted)
        ]
        if wanted and len(targets) != len(wanted):
            found = {m._meta.label_lower for m, _ in targets}
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
        if not targets:
            self.stdout.write("no model has encrypted fields")
        if failed_total:
            self.stderr.write(
                f"{failed_total} value(s) could not be decrypted with any configured key: "
                "do not drop old keys yet (is a key missing from FIELD_ENCRYPTION_KEYS?)"
            )
            sys.exit(1)
        if not options["dry_run"] and targets:
            self.stdout.write(self.style.SUCCESS("done: every value is under the newest key"))

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
            self.stdout.write("")
        return tally

    def _progress(self, label: str, done: int, total: int) -> None:
        width = 30
        filled = int(width * done / total) if total else width
        bar = "#" * filled + "." * (width - filled)
        self.stdout.write(f"\r{label} [{bar}] {done}/{total}", ending="")
        self.stdout.flush()

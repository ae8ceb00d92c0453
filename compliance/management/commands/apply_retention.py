"""Purge what is past its retention period (see README "Privacy and compliance").

Dry run by default (ARCHITECTURE.md: destructive commands dry-run unless told otherwise):
prints what would go. ``--apply`` deletes, in batches, honouring legal holds. ``--dry-run`` is
accepted for clarity and wins over ``--apply``.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from compliance.services import retention_apply


class Command(BaseCommand):
    help = "Apply the retention periods (dry run unless --apply)."

    def add_arguments(self, parser):
        parser.add_argument("--apply", action="store_true", help="really delete")
        parser.add_argument("--dry-run", action="store_true", help="only show (the default)")
        parser.add_argument("--batch-size", type=int, default=None)

    def handle(self, *args, **options):
        dry_run = options["dry_run"] or not options["apply"]
        if options["batch_size"] is not None and options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1")
        counts = retention_apply(dry_run=dry_run, batch_size=options["batch_size"])
        verb = "would delete" if dry_run else "deleted"
        for key in sorted(counts):
            self.stdout.write(f"{key}: {counts[key]} {verb}")
        if dry_run:
            self.stdout.write("dry run: nothing was changed (use --apply to delete)")

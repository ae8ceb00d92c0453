"""Verify the personal-data access log's hash chain; exit 1 naming each tampered row."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from compliance.services import access_log_verify


class Command(BaseCommand):
    help = "Check the access log's hash chain (exit status 1 when a row was edited or removed)."

    def handle(self, *args, **options):
        checked, problems = access_log_verify()
        if problems:
            for problem in problems:
                self.stderr.write(f"access log row #{problem.entry_id}: {problem.problem}")
            raise CommandError(
                f"access log tampered: {len(problems)} problem(s) in {checked} row(s)",
                returncode=1,
            )
        self.stdout.write(f"access log intact: {checked} row(s) checked")

"""Sync the approved WhatsApp templates from Meta into the template table.

    manage.py sync_whatsapp_templates          # GET /{WHATSAPP_BUSINESS_ACCOUNT_ID}/message_templates
    manage.py sync_whatsapp_templates --demo   # load the simulator's catalogue (no HTTP), if empty

Exit status 1 with Meta's error when the list cannot be read; the table is then unchanged.
"""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from whatsapp.client import GraphError
from whatsapp.models import MessageTemplate
from whatsapp.templates import TemplateSyncError, templates_sync


class _CatalogueClient:
    """Serves the simulator's catalogue through the same code path as Meta's answer."""

    def list_templates(self, waba_id: str):
        from whatsapp.simulator.catalogue import DEMO_TEMPLATES

        yield from DEMO_TEMPLATES


class Command(BaseCommand):
    help = "Sync approved WhatsApp templates from Meta (or load the demo catalogue)."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--demo",
            action="store_true",
            help="load the simulator's demo templates when the table is empty (development)",
        )

    def handle(self, *args, **options) -> None:
        if options["demo"]:
            if not settings.DEBUG:
                raise CommandError("--demo loads made-up templates: development only (DEBUG on)")
            if MessageTemplate.objects.exists():
                self.stdout.write("templates: table not empty, demo catalogue not loaded")
                return
            report = templates_sync(client=_CatalogueClient(), waba_id="demo")
        else:
            try:
                report = templates_sync()
            except TemplateSyncError as exc:
                raise CommandError(str(exc)) from exc
            except GraphError as exc:
                raise CommandError(
                    f"Meta refused the template list: code {exc.code}, {exc.title}"
                ) from exc
        r = report
        self.stdout.write(
            f"templates: {r.created} created, {r.updated} updated, {r.unchanged} unchanged, "
            f"{r.disabled} disabled, {r.skipped} duplicates skipped"
        )

"""Rebuild the English catalogues from the source and compile them.

    manage.py update_catalogues            # every catalogue: makemessages, then compilemessages
    manage.py update_catalogues accounts   # just these (app labels, or "project")

Each catalogue is extracted on its own (``ispsupport.catalogues``); entries no longer in the
source are dropped. New entries arrive with an empty msgstr (or fuzzy, when msgmerge guessed
from a similar one): translate them, run this again, commit the .po and the .mo. README
"Languages".
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from ispsupport import catalogues as cat


class Command(BaseCommand):
    help = "makemessages -l en per catalogue (apps and project), then msgfmt (what compilemessages runs)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("names", nargs="*", help='app labels or "project" (default: all)')

    def handle(self, *args, **options) -> None:
        known = {c.name: c for c in cat.catalogues()}
        unknown = set(options["names"]) - set(known)
        if unknown:
            raise CommandError(f"no catalogue named: {', '.join(sorted(unknown))}")
        for name in options["names"] or list(known):
            catalogue = known[name]
            po = cat.catalogue_extract(catalogue=catalogue)
            entries = cat.po_read(po)
            missing = sum(1 for e in entries if not e.translated)
            cat.catalogue_compile(catalogue=catalogue)
            self.stdout.write(f"{name}: {len(entries)} entries, {missing} to translate")

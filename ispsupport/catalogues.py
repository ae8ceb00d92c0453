"""The English translation catalogues: where they are, how to rebuild them, how to read them.

ispsupport speaks pt-BR first; every msgid is the pt-BR text and each catalogue carries its
English. There is one catalogue per domain app (``<app>/locale/en``, for the app's Python and
its own templates) and one for the project (``locale/en``, for ``templates/`` and
``ispsupport/``). ``manage.py update_catalogues`` rebuilds them all with Django's
``makemessages`` (run per catalogue, so an app's strings never land in another's file) and
compiles the ``.mo`` files; ``tests/test_translations.py`` fails when one is incomplete.
"""

from __future__ import annotations

import gettext
import json
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.core.management import call_command
from django.core.management.commands import makemessages

LANGUAGE = "en"
# Extraction skips these everywhere: tests and migrations hold no text people read.
IGNORE = ["tests", "migrations", "locale", "__pycache__"]


@dataclass(frozen=True)
class Catalogue:
    name: str
    root: Path  # makemessages runs here: the references in the .po are relative to it
    sources: tuple[str, ...]  # folders under root that hold the catalogue's strings

    @property
    def locale_dir(self) -> Path:
        return self.root / "locale" if self.name != "project" else Path(settings.LOCALE_PATHS[0])

    @property
    def po_path(self) -> Path:
        return self.locale_dir / LANGUAGE / "LC_MESSAGES" / "django.po"

    @property
    def mo_path(self) -> Path:
        return self.po_path.with_suffix(".mo")


def catalogues() -> list[Catalogue]:
    """The project catalogue, then one per installed app that lives in this repository."""
    base = Path(settings.BASE_DIR)
    found = [Catalogue("project", base, ("templates", "ispsupport"))]
    for config in apps.get_app_configs():
        path = Path(config.path)
        if path.parent == base and config.name != "ispsupport":
            found.append(Catalogue(config.label, path, (".",)))
    return found


@contextmanager
def _cwd(path: Path) -> Iterator[None]:
    previous = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


class _ScopedMakeMessages(makemessages.Command):
    """``makemessages`` for exactly one catalogue: only its source folders are read and every
    string goes to its locale folder (stock makemessages run from the project root files a
    string by path prefix, and ``isp/locale`` would swallow ``ispsupport/``)."""

    # No fuzzy guesses: a new string starts empty rather than with a similar string's English,
    # which reads as translated and is wrong.
    msgmerge_options = [*makemessages.Command.msgmerge_options, "--no-fuzzy-matching"]

    def __init__(self, catalogue: Catalogue, locale_dir: Path) -> None:
        super().__init__()
        self.catalogue = catalogue
        self.target = str(locale_dir)

    def find_files(self, root):
        self.locale_paths = [self.target]
        self.default_locale_path = self.target
        files = []
        for source in self.catalogue.sources:
            for translatable in super().find_files(source):
                translatable.locale_dir = self.target
                files.append(translatable)
        self.locale_paths = [self.target]
        return files


def catalogue_extract(*, catalogue: Catalogue, locale_dir: Path | None = None) -> Path:
    """Run makemessages for ``catalogue`` into ``locale_dir`` (default: its own, updating the
    committed .po and dropping obsolete entries); return the .po path written."""
    target = locale_dir or catalogue.locale_dir
    (target / LANGUAGE / "LC_MESSAGES").mkdir(parents=True, exist_ok=True)
    command = _ScopedMakeMessages(catalogue, target)
    with _cwd(catalogue.root):
        # call_command, not run_from_argv: that one closes the database connections after.
        call_command(
            command,
            locale=[LANGUAGE],
            no_obsolete=True,
            ignore_patterns=list(IGNORE),
            verbosity=0,
        )
    return target / LANGUAGE / "LC_MESSAGES" / "django.po"


def catalogue_compile(*, catalogue: Catalogue) -> None:
    """Compile the .po into the .mo exactly as ``compilemessages`` does (msgfmt --check-format),
    whatever the files' times say."""
    subprocess.run(  # noqa: S603
        ["msgfmt", "--check-format", "-o", str(catalogue.mo_path), str(catalogue.po_path)],  # noqa: S607
        check=True,
    )


@dataclass
class Entry:
    msgid: str
    msgctxt: str | None = None
    msgid_plural: str | None = None
    msgstr: list[str] | None = None
    fuzzy: bool = False
    obsolete: bool = False

    @property
    def key(self) -> tuple[str | None, str]:
        return (self.msgctxt, self.msgid)

    @property
    def translated(self) -> bool:
        return bool(self.msgstr) and all(s.strip() for s in self.msgstr) and not self.fuzzy


def po_read(path: Path) -> list[Entry]:
    """The entries of a .po file as msgmerge writes it (entries separated by blank lines); the
    header, msgid "", is left out."""
    entries: list[Entry] = []
    for block in path.read_text(encoding="utf-8").split("\n\n"):
        fields: dict[str, str] = {}
        flags: set[str] = set()
        obsolete = False
        current = None
        for raw in block.splitlines():
            line = raw.strip()
            if line.startswith("#~"):
                obsolete = True
                line = line[2:].strip()
                if line.startswith("|"):  # the previous msgid that --previous keeps
                    continue
            elif line.startswith("#,"):
                flags |= {flag.strip() for flag in line[2:].split(",")}
                continue
            elif line.startswith("#") or not line:
                continue
            if line.startswith('"'):
                fields[current] += json.loads(line)
                continue
            current, _, value = line.partition(" ")
            fields[current] = json.loads(value)
        if fields.get("msgid", "") == "":
            continue
        plural = sorted(k for k in fields if k.startswith("msgstr["))
        entries.append(
            Entry(
                msgid=fields["msgid"],
                msgctxt=fields.get("msgctxt"),
                msgid_plural=fields.get("msgid_plural"),
                msgstr=[fields[k] for k in plural] if plural else [fields.get("msgstr", "")],
                fuzzy="fuzzy" in flags,
                obsolete=obsolete,
            )
        )
    return entries


def mo_read(path: Path) -> dict:
    """The compiled catalogue as gettext sees it: ``{msgid: msgstr}``, ``"ctx\\x04msgid"`` for a
    context, ``(msgid, n)`` for plural forms."""
    with path.open("rb") as handle:
        catalog = dict(gettext.GNUTranslations(handle)._catalog)
    catalog.pop("", None)
    return catalog


def po_as_mo(entries: list[Entry]) -> dict:
    """What msgfmt should compile ``entries`` into (translated, non-fuzzy, live entries)."""
    expected: dict = {}
    for entry in entries:
        if entry.obsolete or not entry.translated:
            continue
        msgid = entry.msgid if entry.msgctxt is None else f"{entry.msgctxt}\x04{entry.msgid}"
        if entry.msgid_plural is None:
            expected[msgid] = entry.msgstr[0]
        else:
            for n, text in enumerate(entry.msgstr):
                expected[(msgid, n)] = text
    return expected

"""A one-line progress bar for operator commands, drawn on stderr so stdout keeps the report.

``progress_line`` renders it; commands redraw it with a carriage return
(``rotate_encryption_keys``, ``import_customers``). No dependency: a bar is thirty characters.
"""

from __future__ import annotations

import time
from collections.abc import Callable

BAR_WIDTH = 30


def progress_line(label: str, done: int, total: int, *, suffix: str = "") -> str:
    """``label [#########.....] done/total`` (plus ``suffix``), without a line ending."""
    filled = min(BAR_WIDTH, int(BAR_WIDTH * done / total)) if total else BAR_WIDTH
    bar = "#" * filled + "." * (BAR_WIDTH - filled)
    return f"{label} [{bar}] {done}/{total}{suffix}"


class ProgressBar:
    """Redraws ``progress_line`` through ``write`` with the rate since it started."""

    def __init__(self, write: Callable[[str], None], label: str, *, unit: str = "") -> None:
        self._write = write
        self._label = label
        self._unit = unit
        self._started = time.monotonic()
        self._drawn = False

    def update(self, done: int, total: int) -> None:
        elapsed = max(time.monotonic() - self._started, 1e-6)
        suffix = f" {self._unit} · {done / elapsed:,.0f}/s".replace(",", ".")
        self._write("\r" + progress_line(self._label, done, total, suffix=suffix))
        self._drawn = True

    def close(self) -> None:
        if self._drawn:
            self._write("\n")
            self._drawn = False

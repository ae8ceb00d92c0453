"""The log output of a test, to assert that no personal data reaches it.

``logs.written`` is what the configured root handler writes (after the masking filter: the
log files operators read); ``logs.raw`` is every record at DEBUG as emitted, before any
filter, with its ``extra`` fields — for data no filter can recognise (names, addresses, message
texts, boleto lines), which must not be logged at all.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass

import pytest

from ispsupport.logging import PIIMaskingFilter

__all__ = ["logs"]


@dataclass
class Logs:
    _written: io.StringIO
    _raw: io.StringIO

    @property
    def written(self) -> str:
        return self._written.getvalue()

    @property
    def raw(self) -> str:
        return self._raw.getvalue()

    def leaks(self, values: list[str], *, masked_only: tuple[str, ...] = ()) -> list[str]:
        """The ``values`` found in the output. Those in ``masked_only`` (phones, CPFs) may be
        in the raw records, since the filter masks them; every other value must appear in
        neither."""
        found = [v for v in values if v in self.written]
        found += [v for v in values if v not in masked_only and v in self.raw and v not in found]
        return found


@pytest.fixture
def logs():
    root = logging.getLogger()
    handler = next(
        h for h in root.handlers if any(isinstance(f, PIIMaskingFilter) for f in h.filters)
    )
    written, raw = io.StringIO(), io.StringIO()

    class Capture(logging.Handler):
        def emit(self, record):
            raw.write(f"{record.getMessage()} {record.__dict__!r}\n")

    capture = Capture(level=logging.DEBUG)
    old_stream, old_level = handler.setStream(written), root.level
    root.addHandler(capture)
    root.setLevel(logging.DEBUG)
    yield Logs(written, raw)
    root.removeHandler(capture)
    root.setLevel(old_level)
    handler.setStream(old_stream)

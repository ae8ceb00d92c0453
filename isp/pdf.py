"""A minimal PDF writer: one A4 page of text lines, for the demo ERP's bills.

Pure Python with no dependency and no network: the demo must produce a real, openable PDF (the
second copy the bot sends as a WhatsApp document) on a laptop with nothing installed. Text uses
the standard Helvetica font with WinAnsiEncoding, so Portuguese accents render; characters
outside Windows-1252 become "?". A real ERP sends its own PDF (the bank's boleto).
"""

from __future__ import annotations

from collections.abc import Sequence

PAGE_WIDTH, PAGE_HEIGHT = 595, 842  # A4 in points
MARGIN = 56


def _escape(text: str) -> bytes:
    raw = text.encode("cp1252", errors="replace")
    return raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")


def text_pdf(lines: Sequence[tuple[str, int]], *, title: str = "") -> bytes:
    """A one-page PDF with ``(text, font size)`` lines from the top; size 0 is a blank line.

    Lines that do not fit the page are dropped (a bill is a dozen lines).
    """
    commands = [b"BT"]
    y = PAGE_HEIGHT - MARGIN
    for text, size in lines:
        step = max(size, 10) + 6
        if y - step < MARGIN:
            break
        y -= step
        if not size or not text:
            continue
        font = b"/F2" if size >= 14 else b"/F1"
        commands.append(font + b" %d Tf 1 0 0 1 %d %d Tm (" % (size, MARGIN, y))
        commands[-1] += _escape(text) + b") Tj"
    commands.append(b"ET")
    stream = b"\n".join(commands)

    info = b"<< /Producer (ispsupport) /Title (" + _escape(title) + b") >>"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] "
        b"/Resources << /Font << /F1 4 0 R /F2 5 0 R >> >> /Contents 6 0 R >>"
        % (PAGE_WIDTH, PAGE_HEIGHT),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        info,
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info %d 0 R >>\n" % (
        len(objects) + 1,
        len(objects),
    )
    out += b"startxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)

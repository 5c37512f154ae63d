"""Putting the QR on a rendered licence in an incremental update (ISO 32000-2 §7.5.6).

The QR token carries a digest of the licence PDF, and the QR is in that PDF: a digest
cannot cover itself. So a licence is written in two revisions, the first a byte prefix
of the second:

    1. the rendered licence, with a blank square where the QR goes  ← the token's digest
    2. one update that draws the QR there (vector modules, ISO/IEC 18004 level Q) and
       adds the seal's PAdES signature, which covers both revisions

Anyone holding the issued PDF can cut it at the end of revision 1 (after its first
``%%EOF`` and the end-of-line marker that follows) and compare that prefix with the
token; the public page compares the whole file with the fingerprint of the issued PDF.
"""

from __future__ import annotations

import re

from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

from dangan.licences._pdf_layout import QR_MIN_MODULE_MM, QR_QUIET_ZONE_MODULES
from dangan.licences._qr import QrSymbol
from dangan.licences.render import LicenceRenderError

PT_PER_MM = 72 / 25.4


def qr_operators(qr: QrSymbol, *, x: float, y: float, size: float) -> bytes:
    """PDF operators that paint ``qr`` (quiet zone included) in the square of side
    ``size`` points whose bottom-left corner is (x, y): a white square, then each run of
    dark modules in a row as one rectangle, in a coordinate system of one unit per
    module (corners on integers leave no seams between abutting rectangles)."""
    module = size / (len(qr.matrix) + 2 * QR_QUIET_ZONE_MODULES)
    top = y + size - QR_QUIET_ZONE_MODULES * module
    ops = [
        f"q 1 g {x:.3f} {y:.3f} {size:.3f} {size:.3f} re f 0 g".encode(),
        f"1 0 0 1 {x + QR_QUIET_ZONE_MODULES * module:.4f} {top:.4f} cm {module:.5f} 0 0 {-module:.5f} 0 0 cm".encode(),
    ]
    ops += [
        b"%d %d %d 1 re" % (run.start(), r, run.end() - run.start())
        for r, row in enumerate(qr.matrix)
        for run in re.finditer(rb"\x01+", row)
    ]
    ops.append(b"f Q")
    return b"\n".join(ops)


def draw_qr(
    writer: IncrementalPdfFileWriter,
    qr: QrSymbol,
    *,
    box_mm: tuple[float, float, float],
    page_height_mm: float,
) -> None:
    """Draw ``qr`` on the first page of the document ``writer`` is updating.

    ``box_mm`` is (x, y, size): the QR square's left and top edges, in millimetres from
    the page's top-left corner, and its side.
    """
    x_mm, top_mm, size_mm = box_mm
    modules = len(qr.matrix)
    if size_mm / (modules + 2 * QR_QUIET_ZONE_MODULES) < QR_MIN_MODULE_MM:
        # too fine to print and scan reliably
        raise LicenceRenderError(f"a QR of {modules} modules does not fit its square")
    x = x_mm * PT_PER_MM
    y = (page_height_mm - top_mm - size_mm) * PT_PER_MM
    # The earlier content may leave the graphics state changed: wrap it in q … Q first.
    before = writer.add_object(generic.StreamObject(stream_data=b"q"))
    after = writer.add_object(
        generic.StreamObject(stream_data=b"Q\n" + qr_operators(qr, x=x, y=y, size=size_mm * PT_PER_MM))
    )
    writer.add_stream_to_page(0, before, prepend=True)
    writer.add_stream_to_page(0, after)

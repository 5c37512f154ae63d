"""Electronic licences as A4 PDFs: the page a holder prints and a verifier scans.

:func:`render_licence_pdf` sets a bilingual licence (Chinese primary, English smaller) in
an embedded subset of a CJK TrueType font, leaves a blank square for the verification QR
code and tells the caller where it and the issuer's 42 mm round seal go. Neither is drawn
here: the QR token carries the digest of these bytes, so the QR (:func:`make_qr`, drawn by
:mod:`dangan.licences.qr_overlay`) and the seal follow in an incremental update, and the
bytes returned here stay the first revision of the sealed file.

The same input gives the same bytes, so idempotent retries and tests can compare PDFs.

The file is meant to be PDF/A-2b (ISO 19005-2:2011): the one font is embedded as a
subset (§6.2.11.4), colours are DeviceRGB under an sRGB PDF/A OutputIntent (§6.2.3), and
XMP metadata names the part and level and matches the Info dictionary (§6.6.2.3.1); see
``_pdfa`` for what reportlab needed help with. No validator (veraPDF) has checked it here.

    DanganError
    └── LicenceRenderError   422 licence_render_failed
"""

from __future__ import annotations

import hashlib
import io
import threading
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from reportlab.lib.pagesizes import A4
from reportlab.pdfbase import pdfdoc, pdfmetrics
from reportlab.pdfbase.ttfonts import TTFError, TTFont
from reportlab.pdfgen.canvas import Canvas

from dangan.errors import DanganError
from dangan.licences import _pdf_layout as layout
from dangan.licences import _pdfa, _qr

#: The largest QR version a licence may use: 77 modules of 0.59 mm, 45 mm across.
MAX_QR_VERSION = 15

# Debian paths of CJK fonts with TrueType (glyf) outlines, in order of preference.
# Noto Sans CJK (fonts-noto-cjk) is not listed: Debian ships it as CFF-flavoured OpenType,
# which reportlab's TTFont refuses ("postscript outlines are not supported").
_KNOWN_CJK_FONTS = (
    Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"),  # fonts-wqy-zenhei
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),  # fonts-wqy-microhei
    Path("/usr/share/fonts/truetype/arphic/uming.ttc"),  # fonts-arphic-uming
    Path("/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf"),  # fonts-droid-fallback
)


class LicenceRenderError(DanganError):
    """The licence cannot be rendered: QR too large, text too long, no usable font."""

    code = "licence_render_failed"
    title = "The licence cannot be rendered"
    status = 422


@dataclass(frozen=True)
class LicenceField:
    """One type-specific line of a licence, such as 经营场所 / Premises."""

    label_zh: str
    """The Chinese label, printed first."""
    label_en: str
    """The English label, printed smaller under the Chinese one."""
    value: str
    """The value, up to about 200 characters; wrapped to the value column."""


@dataclass(frozen=True)
class LicenceRendering:
    """What a licence shows on paper, ready to print."""

    title_zh: str
    """The licence's Chinese title, e.g. 食品经营许可证."""
    title_en: str
    """The licence's English title, e.g. Food Business Licence."""
    identifier: str
    """The licence identifier (up to about 70 characters)."""
    holder_label_zh: str
    """The Chinese label of the holder, e.g. 经营者."""
    holder_label_en: str
    """The English label of the holder, e.g. Operator."""
    holder_name: str
    """The holder's full name (Chinese or Latin, up to 100 characters)."""
    holder_id_label_zh: str
    """The Chinese label of the holder's identifier, e.g. 统一社会信用代码."""
    holder_id_label_en: str
    """The English label of the holder's identifier, e.g. Unified social credit code."""
    holder_id: str
    """The holder's identifier."""
    fields: tuple[LicenceField, ...]
    """The type-specific fields (0 to 20), in printing order."""
    issuer_name: str
    """The issuing authority (发证机关), printed under the seal."""
    valid_from: date
    """The first day of validity."""
    valid_until: date | None
    """The last day of validity; None for a licence without expiry (长期)."""
    issued_on: date
    """The issue date; also the PDF's creation date."""


@dataclass(frozen=True)
class RenderedLicence:
    """A rendered, not yet sealed, licence."""

    pdf: bytes
    """The one-page A4 PDF."""
    seal_box_mm: tuple[float, float, float, float]
    """Where the seal goes: x, y of its top edge, width, height, in millimetres from the
    page's top-left corner. It covers the issuer name and issue date, not the QR code."""
    qr_box_mm: tuple[float, float, float]
    """The QR square, quiet zone included: x and y of its top-left corner and its side,
    in millimetres from the page's top-left corner. The same for every version."""


@dataclass(frozen=True)
class _Font:
    name: str
    face: TTFont
    lock: threading.Lock
    """Held while a document using this font is built: reportlab subsets the face through
    one shared read cursor, so two documents must not be finished at the same time."""


_FONTS: dict[Path, _Font] = {}
_FONTS_LOCK = threading.Lock()


def find_cjk_font() -> Path:
    """The first CJK TrueType font installed at a known Debian path."""
    for path in _KNOWN_CJK_FONTS:
        if path.is_file():
            return path
    raise LicenceRenderError(
        "no CJK font found; install one, e.g. `apt-get install fonts-wqy-zenhei`",
        searched=[str(p) for p in _KNOWN_CJK_FONTS],
    )


def render_licence_pdf(
    rendering: LicenceRendering, *, font_path: Path | None = None
) -> RenderedLicence:
    """Render ``rendering`` as a one-page A4 PDF and say where the QR and the seal go."""
    font = _registered_font(font_path or find_cjk_font())
    page = _page_content(rendering)
    _require_glyphs(font, page)
    out = io.BytesIO()
    with font.lock:
        canvas = Canvas(
            out,
            pagesize=A4,
            invariant=1,
            pageCompression=0,
            pdfVersion=(1, 7),
            initialFontName=font.name,
            lang="zh-CN",
        )
        # Every stream Flate-compressed: reportlab's page compression would add an
        # ASCII85 layer, a third larger and slower to write.
        canvas._doc.defaultStreamFilters = [pdfdoc.PDFZCompress]
        _pdfa.describe(canvas, _document_info(rendering))
        try:
            layout.draw_page(canvas, page, font=font.name)
        except layout.LayoutError as exc:
            raise LicenceRenderError(str(exc)) from exc
        canvas.showPage()
        canvas.save()
    return RenderedLicence(
        pdf=_pdfa.end_streams_with_eol(out.getvalue()),
        seal_box_mm=layout.seal_box_mm(),
        qr_box_mm=layout.qr_box_mm(),
    )


def _registered_font(path: Path) -> _Font:
    """The font at ``path``, parsed and registered with reportlab once per process."""
    key = path.resolve()
    with _FONTS_LOCK:
        font = _FONTS.get(key)
        if font is None:
            name = "DanganCJK-" + hashlib.sha256(str(key).encode()).hexdigest()[:12]
            try:
                # First face of a collection; no HarfBuzz shaping (CJK needs none, and
                # unshaped text is faster and the same with or without uharfbuzz).
                face = TTFont(name, str(key), subfontIndex=0, shapable=False)
            except (OSError, TTFError) as exc:
                raise LicenceRenderError(f"cannot use the font {path}: {exc}") from exc
            pdfmetrics.registerFont(face)
            font = _FONTS[key] = _Font(name, face, threading.Lock())
    return font


def make_qr(url: str) -> _qr.QrSymbol:
    """The licence QR for ``url``: level Q, version ≤ :data:`MAX_QR_VERSION`."""
    # ISO/IEC 18004:2015 §7.5.1 level Q recovers ~25 % of codewords: a printed licence
    # survives a fold or a stain. The symbol is segno.make_qr(url, error="q",
    # boost_error=False), with the data mask chosen faster (see _qr).
    try:
        return _qr.encode(url, max_version=MAX_QR_VERSION)
    except _qr.QrTooLarge as exc:
        raise LicenceRenderError(
            f"the URL needs a version {exc.version} QR code; at most {MAX_QR_VERSION} fits",
            qr_version=exc.version,
        ) from exc
    except ValueError as exc:  # segno's DataOverflowError is one
        raise LicenceRenderError(f"the QR code cannot hold the URL: {exc}") from exc


def _format_date(d: date) -> str:
    return f"{d.year}年{d.month:02d}月{d.day:02d}日"


def _page_content(r: LicenceRendering) -> layout.PageContent:
    until = _format_date(r.valid_until) if r.valid_until else "长期 / No expiry"
    rows = (
        layout.BodyRow(r.holder_label_zh, r.holder_label_en, r.holder_name),
        layout.BodyRow(r.holder_id_label_zh, r.holder_id_label_en, r.holder_id),
        *(layout.BodyRow(f.label_zh, f.label_en, f.value) for f in r.fields),
        layout.BodyRow("有效期自", "Valid from", _format_date(r.valid_from)),
        layout.BodyRow("有效期至", "Valid until", until),
    )
    return layout.PageContent(
        title_zh=r.title_zh,
        title_en=r.title_en,
        identifier=r.identifier,
        rows=rows,
        issuer_name=r.issuer_name,
        issued_on=_format_date(r.issued_on),
    )


def _require_glyphs(font: _Font, page: layout.PageContent) -> None:
    """Refuse characters the font lacks: they would print as boxes, and ISO 19005-2
    §6.2.11.8 forbids showing .notdef in a PDF/A file."""
    covered = font.face.face.charToGlyph
    text = "".join(page.texts()).replace("\n", "")
    missing = sorted({ch for ch in text if ord(ch) not in covered and ch != "\u00a0"})
    if missing:
        raise LicenceRenderError(f"the font has no glyph for {''.join(missing)!r}", missing=missing)


def _document_info(r: LicenceRendering) -> _pdfa.DocumentInfo:
    # The issue date is a date in China: the PDF says midnight at UTC+8 (not the wall
    # clock, so the same licence gives the same bytes).
    return _pdfa.DocumentInfo(
        title=f"{r.title_zh} / {r.title_en}",
        author=r.issuer_name,
        subject=f"{r.title_en} {r.identifier}",
        keywords=r.identifier,
        creator="dangan",
        producer="dangan licence renderer (ReportLab)",
        created_pdf=f"D:{r.issued_on:%Y%m%d}000000+08'00'",
        created_xmp=f"{r.issued_on.isoformat()}T00:00:00+08:00",
    )

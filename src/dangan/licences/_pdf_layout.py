"""Private: the licence page's geometry and line breaking.

Positions are millimetres from the page's top-left corner, as one measures a printed
licence; :func:`_x` and :func:`_y` turn them into PDF user space (points from the
bottom-left). Everything here draws onto a reportlab canvas in one CJK font; the caller
owns the document, its metadata and the font.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas

MM = 72 / 25.4
"""Points per millimetre."""
PAGE_W_MM, PAGE_H_MM = 210.0, 297.0  # A4 portrait (ISO 216)

SEAL_DIAMETER_MM = 42.0
# The seal sits over the issuer name and issue date, as on paper licences.
_SEAL_CENTRE_MM = (148.0, 250.0)
_ISSUER_BLOCK_HALF_WIDTH_MM = 40.0

_LEFT_MM, _RIGHT_MM = 20.0, 190.0
_LABEL_WIDTH_MM = 42.0
_VALUE_LEFT_MM = _LEFT_MM + _LABEL_WIDTH_MM + 2.0
_BODY_TOP_MM = 66.0

# ISO/IEC 18004:2015 §6.3.8: the quiet zone is 4 modules wide on every side. The QR code's
# outer square (quiet zone included) is a constant 50 mm, so a version 15 symbol (77
# modules) gets 0.588 mm modules and is 45.3 mm wide; a version 1 symbol is 36.2 mm.
QR_QUIET_ZONE_MODULES = 4
QR_OUTER_MM = 50.0
QR_MIN_MODULE_MM = 0.5
_QR_LEFT_MM, _QR_BOTTOM_MM = 16.0, 277.0
_QR_CAPTION_BASELINE_MM = 281.5

_BODY_SIZES = (11.0, 10.5, 10.0, 9.5, 9.0, 8.5, 8.0, 7.5, 7.0)
_EN_RATIO = 0.65  # English labels are set this much smaller than the Chinese ones
_LEADING = 1.3

_INK = (0.0, 0.0, 0.0)
_LABEL_INK = (0.22, 0.22, 0.22)
_EN_INK = (0.38, 0.38, 0.38)
_BORDER_INK = (0.55, 0.12, 0.10)

# Line breaking: a CJK character, with opening brackets kept with what follows and
# closing punctuation with what precedes (basic kinsoku rules); a run of spaces; or a
# run of anything else (a Latin word, a number).
_CJK = "\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef"
_OPEN, _CLOSE = "（《「『【〔“‘", "、。，．：；！？）》」』】〕”’%"
_TOKEN = re.compile(rf"[{_OPEN}]*[{_CJK}][{_CLOSE}]*|[ \t\u3000]+|[^{_CJK} \t\u3000]+")


class LayoutError(Exception):
    """The text cannot be laid out on one A4 page."""


@dataclass(frozen=True)
class BodyRow:
    """One label/value pair of the licence's body."""

    label_zh: str
    """The Chinese label, set at the body size."""
    label_en: str
    """The English label, set smaller under the Chinese one."""
    value: str
    """The value; wrapped to the value column, ``\\n`` forces a break."""


@dataclass(frozen=True)
class PageContent:
    """Everything printed on the licence, as strings ready to set."""

    title_zh: str
    """The licence title in Chinese."""
    title_en: str
    """The licence title in English."""
    identifier: str
    """The licence identifier, printed under the title."""
    rows: tuple[BodyRow, ...]
    """The body, top to bottom."""
    issuer_name: str
    """The issuing authority."""
    issued_on: str
    """The issue date, formatted."""

    def texts(self) -> list[str]:
        """Every string that will be set in the font (for a glyph coverage check)."""
        fixed = [_ID_ZH, _ID_EN, _ISSUER_ZH, _ISSUER_EN, _DATE_ZH, _DATE_EN, _QR_ZH, _QR_EN]
        rows = [t for r in self.rows for t in (r.label_zh, r.label_en, r.value)]
        heads = [self.title_zh, self.title_en, self.identifier, self.issuer_name, self.issued_on]
        return fixed + heads + rows


_ID_ZH, _ID_EN = "许可证编号", "Licence No."
_ISSUER_ZH, _ISSUER_EN = "发证机关", "Issuing authority"
_DATE_ZH, _DATE_EN = "签发日期", "Date of issue"
_QR_ZH, _QR_EN = "扫码核验", "Scan to verify"


def _x(mm: float) -> float:
    return mm * MM


def _y(mm: float) -> float:
    return (PAGE_H_MM - mm) * MM


def seal_box_mm() -> tuple[float, float, float, float]:
    """Where the round seal goes: x, y of the top-left corner, width, height, in mm."""
    cx, cy = _SEAL_CENTRE_MM
    r = SEAL_DIAMETER_MM / 2
    return (cx - r, cy - r, SEAL_DIAMETER_MM, SEAL_DIAMETER_MM)


def qr_box_mm() -> tuple[float, float, float]:
    """The QR square, quiet zone included: x, y of the top-left corner and side, in mm."""
    return (_QR_LEFT_MM, _QR_BOTTOM_MM - QR_OUTER_MM, QR_OUTER_MM)


def wrap(text: str, font: str, size: float, width: float) -> list[str]:
    """Greedy line breaking of ``text`` into lines at most ``width`` points wide."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        cur, cur_w = "", 0.0
        for tok in _TOKEN.findall(paragraph):
            tok_w = stringWidth(tok, font, size)
            if cur_w + tok_w <= width:
                cur, cur_w = cur + tok, cur_w + tok_w
            elif tok.isspace():
                lines.append(cur.rstrip())
                cur, cur_w = "", 0.0
            elif tok_w <= width:
                lines.append(cur.rstrip())
                cur, cur_w = tok, tok_w
            else:  # a word wider than the line (an identifier, a URL): break anywhere
                for ch in tok:
                    ch_w = stringWidth(ch, font, size)
                    if cur and cur_w + ch_w > width:
                        lines.append(cur.rstrip())
                        cur, cur_w = "", 0.0
                    cur, cur_w = cur + ch, cur_w + ch_w
        lines.append(cur.rstrip())
    return lines


@dataclass(frozen=True)
class _LaidRow:
    zh: list[str]
    en: list[str]
    value: list[str]
    height: float  # points


def _lay_out_body(rows: Sequence[BodyRow], font: str, size: float) -> list[_LaidRow]:
    en_size = size * _EN_RATIO
    label_w = _LABEL_WIDTH_MM * MM
    value_w = (_RIGHT_MM - _VALUE_LEFT_MM) * MM
    laid = []
    for row in rows:
        zh = wrap(row.label_zh, font, size, label_w)
        en = wrap(row.label_en, font, en_size, label_w) if row.label_en else []
        value = wrap(row.value, font, size, value_w)
        label_h = len(zh) * size * _LEADING + len(en) * en_size * _LEADING
        height = max(label_h, len(value) * size * _LEADING) + size * 0.45
        laid.append(_LaidRow(zh, en, value, height))
    return laid


def _fit_body(rows: Sequence[BodyRow], font: str, bottom_mm: float) -> tuple[float, list[_LaidRow]]:
    available = (bottom_mm - _BODY_TOP_MM) * MM
    for size in _BODY_SIZES:
        laid = _lay_out_body(rows, font, size)
        if sum(r.height for r in laid) <= available:
            return size, laid
    raise LayoutError(f"the licence text does not fit on one A4 page, even at {_BODY_SIZES[-1]} pt")


def _fit_size(text: str, font: str, size: float, width: float, *, min_size: float) -> float:
    """The largest size ≤ ``size`` (in 0.5 pt steps) at which ``text`` fits ``width``."""
    while stringWidth(text, font, size) > width:
        size -= 0.5
        if size < min_size:
            raise LayoutError(f"{text!r} is too long to fit on the licence")
    return size


def draw_page(canvas: Canvas, page: PageContent, *, font: str) -> None:
    """Draw the whole licence on the canvas's current page."""
    qr_left, qr_top, qr_side = qr_box_mm()
    body_bottom = min(qr_top, seal_box_mm()[1]) - 3.0
    size, laid = _fit_body(page.rows, font, body_bottom)
    _draw_border(canvas)
    _draw_heading(canvas, page, font)
    _draw_body(canvas, laid, font, size)
    _draw_issuer(canvas, page, font)
    _draw_pair_centred(
        canvas, _QR_ZH, _QR_EN, font, 9.0, qr_left + qr_side / 2, _QR_CAPTION_BASELINE_MM
    )


def _draw_border(canvas: Canvas) -> None:
    canvas.setStrokeColorRGB(*_BORDER_INK)
    for inset, width in ((10.0, 1.6), (12.5, 0.5)):
        canvas.setLineWidth(width)
        canvas.rect(
            _x(inset),
            _y(PAGE_H_MM - inset),
            _x(PAGE_W_MM - 2 * inset),
            (PAGE_H_MM - 2 * inset) * MM,
            stroke=1,
            fill=0,
        )
    canvas.setLineWidth(0.5)
    canvas.line(_x(_LEFT_MM), _y(59.0), _x(_RIGHT_MM), _y(59.0))


def _draw_heading(canvas: Canvas, page: PageContent, font: str) -> None:
    width = (_RIGHT_MM - _LEFT_MM) * MM
    centre = _x(PAGE_W_MM / 2)
    canvas.setFillColorRGB(*_INK)
    size = _fit_size(page.title_zh, font, 26.0, width, min_size=14.0)
    canvas.setFont(font, size)
    canvas.drawCentredString(centre, _y(34.0), page.title_zh)
    size = _fit_size(page.title_en, font, 13.0, width, min_size=8.0)
    canvas.setFillColorRGB(*_EN_INK)
    canvas.setFont(font, size)
    canvas.drawCentredString(centre, _y(43.0), page.title_en)
    # 许可证编号 Licence No. <identifier>, centred as one run.
    size = 10.0
    while True:
        parts = (
            (_ID_ZH, size, _LABEL_INK),
            (" " + _ID_EN + "  ", size * _EN_RATIO, _EN_INK),
            (page.identifier, size, _INK),
        )
        total = sum(stringWidth(t, font, s) for t, s, _ in parts)
        if total <= width:
            break
        size -= 0.5
        if size < 6.0:
            raise LayoutError("the licence identifier is too long to fit on the licence")
    x = centre - total / 2
    for text, s, ink in parts:
        canvas.setFillColorRGB(*ink)
        canvas.setFont(font, s)
        canvas.drawString(x, _y(53.0), text)
        x += stringWidth(text, font, s)


def _draw_body(canvas: Canvas, laid: Sequence[_LaidRow], font: str, size: float) -> None:
    en_size = size * _EN_RATIO
    top = _y(_BODY_TOP_MM)
    for row in laid:
        baseline = top - size
        canvas.setFillColorRGB(*_LABEL_INK)
        canvas.setFont(font, size)
        for line in row.zh:
            canvas.drawString(_x(_LEFT_MM), baseline, line)
            baseline -= size * _LEADING
        # The English label hangs under the last Chinese line at its own, smaller leading.
        baseline += (size - en_size) * _LEADING
        canvas.setFillColorRGB(*_EN_INK)
        canvas.setFont(font, en_size)
        for line in row.en:
            canvas.drawString(_x(_LEFT_MM), baseline, line)
            baseline -= en_size * _LEADING
        canvas.setFillColorRGB(*_INK)
        canvas.setFont(font, size)
        baseline = top - size
        for line in row.value:
            canvas.drawString(_x(_VALUE_LEFT_MM), baseline, line)
            baseline -= size * _LEADING
        top -= row.height


def _draw_issuer(canvas: Canvas, page: PageContent, font: str) -> None:
    cx = _SEAL_CENTRE_MM[0]
    width = 2 * _ISSUER_BLOCK_HALF_WIDTH_MM * MM
    _draw_pair_centred(canvas, _ISSUER_ZH, _ISSUER_EN, font, 9.0, cx, 240.0)
    size = _fit_size(page.issuer_name, font, 13.0, width, min_size=8.0)
    canvas.setFillColorRGB(*_INK)
    canvas.setFont(font, size)
    canvas.drawCentredString(_x(cx), _y(248.0), page.issuer_name)
    _draw_pair_centred(canvas, _DATE_ZH, _DATE_EN, font, 9.0, cx, 257.0)
    canvas.setFillColorRGB(*_INK)
    canvas.setFont(font, 11.0)
    canvas.drawCentredString(_x(cx), _y(264.0), page.issued_on)


def _draw_pair_centred(
    canvas: Canvas, zh: str, en: str, font: str, size: float, centre_mm: float, baseline_mm: float
) -> None:
    """A Chinese label and its smaller English twin on one baseline, centred as a pair."""
    en_text, en_size = "  " + en, size * _EN_RATIO
    total = stringWidth(zh, font, size) + stringWidth(en_text, font, en_size)
    x = _x(centre_mm) - total / 2
    canvas.setFillColorRGB(*_LABEL_INK)
    canvas.setFont(font, size)
    canvas.drawString(x, _y(baseline_mm), zh)
    canvas.setFillColorRGB(*_EN_INK)
    canvas.setFont(font, en_size)
    canvas.drawString(x + stringWidth(zh, font, size), _y(baseline_mm), en_text)

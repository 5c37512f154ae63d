"""Visible PAdES signatures: a PNG seal with transparency and Chinese text, as poppler draws them.

The signed page is rendered by ``pdftoppm`` at 72 dpi (one pixel per PDF point) and the
stamp's box is inspected pixel by pixel; ``pdffonts`` confirms the CJK font is embedded.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from tests.signing.pades_tools import (
    PAGE_GREY,
    PAGE_HEIGHT,
    PDFFONTS,
    PDFTOPPM,
    render_page,
    run,
    seal_png,
    sign,
)

pytest_plugins = ["tests.signing.pades_fixtures"]
needs_pdftoppm = pytest.mark.skipif(PDFTOPPM is None, reason="needs poppler's pdftoppm")

BOX = (100, 500, 300, 700)  # x1, y1, x2, y2 in points: 200 x 200
GREY = round(PAGE_GREY * 255)


def _box_pixels(page: Image.Image, box: tuple[int, int, int, int]) -> Image.Image:
    """The part of a 72-dpi rendering inside ``box`` (PDF y runs up, image y runs down)."""
    x1, y1, x2, y2 = box
    return page.crop((x1, PAGE_HEIGHT - y2, x2, PAGE_HEIGHT - y1))


def _count(image: Image.Image, test: Callable[[tuple[int, int, int]], bool]) -> int:
    """How many pixels of ``image`` pass ``test``."""
    pixels = image.load()
    return sum(1 for y in range(image.height) for x in range(image.width) if test(pixels[x, y]))


def _is_red(pixel: tuple[int, int, int]) -> bool:
    r, g, b = pixel
    return r > 150 and g < 90 and b < 90


def _is_dark(pixel: tuple[int, int, int]) -> bool:
    return max(pixel) < 100


def _is_page_grey(pixel: tuple[int, int, int]) -> bool:
    return all(abs(channel - GREY) <= 3 for channel in pixel)


@needs_pdftoppm
def test_a_png_seal_is_drawn_with_its_transparency(
    signers, timestamper, blank_pdf, tmp_path: Path
) -> None:
    signed = sign(
        blank_pdf,
        signer=signers["p256"],
        level="B-T",
        timestamper=timestamper,
        box=BOX,
        appearance=seal_png(),
    )
    (tmp_path / "seal.pdf").write_bytes(signed)
    page = render_page(tmp_path / "seal.pdf", tmp_path / "seal")
    stamp = _box_pixels(page, BOX)
    area = stamp.width * stamp.height
    assert _count(stamp, _is_red) > area // 10, "the seal is not drawn"
    # The PNG is transparent around the ring: the grey page shows through there.
    corner = stamp.crop((0, 0, 20, 20))
    assert _count(corner, _is_page_grey) == 400
    # Outside the box the page is untouched.
    beside = _box_pixels(page, (320, 500, 520, 700))
    assert _count(beside, _is_page_grey) == beside.width * beside.height


@needs_pdftoppm
def test_chinese_text_is_drawn_in_an_embedded_font(
    signers, timestamper, blank_pdf, tmp_path: Path
) -> None:
    text = "北京市朝阳区市场监督管理局\n审批专用章 2026"
    box = (100, 600, 400, 660)
    signed = sign(
        blank_pdf,
        signer=signers["rsa2048"],
        level="B-T",
        timestamper=timestamper,
        box=box,
        text=text,
    )
    path = tmp_path / "text.pdf"
    path.write_bytes(signed)
    stamp = _box_pixels(render_page(path, tmp_path / "text"), box)
    dark = _count(stamp, _is_dark)
    # Glyphs, not tofu boxes or nothing: a good share of the box is ink, but not all.
    assert stamp.width * stamp.height // 50 < dark < stamp.width * stamp.height // 2
    if PDFFONTS is not None:
        fonts = run(PDFFONTS, path).stdout
        line = next(line for line in fonts.splitlines() if "WenQuanYi" in line)
        # name, type CID TrueType, encoding Identity-H, emb yes, sub yes, uni yes
        assert "CID TrueType" in line and "Identity-H" in line
        assert line.split()[-5:-2] == ["yes", "yes", "yes"], line


@needs_pdftoppm
def test_text_over_a_seal_and_the_default_text(
    signers, timestamper, blank_pdf, tmp_path: Path
) -> None:
    signed = sign(
        blank_pdf,
        signer=signers["p256"],
        level="B-T",
        timestamper=timestamper,
        box=BOX,
        appearance=seal_png(),
        text="合同专用章",
    )
    signed = sign(signed, signer=signers["rsa2048"], level="B-B", box=(320, 500, 520, 560))
    path = tmp_path / "both.pdf"
    path.write_bytes(signed)
    page = render_page(path, tmp_path / "both")
    seal_and_text = _box_pixels(page, BOX)
    assert _count(seal_and_text, _is_red) > 1000 and _count(seal_and_text, _is_dark) > 100
    # Without text or image the signer's name and the signing time are written.
    default = _box_pixels(page, (320, 500, 520, 560))
    assert _count(default, _is_dark) > 100

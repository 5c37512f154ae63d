"""Seal appearances: a drawn round official seal (公章), vetted uploads, cross-page slices.

A round seal is a thick ring, the organisation's name along the upper arc with each
character's foot towards the centre, a five-pointed star in the middle, an optional line
naming the seal's purpose (e.g. 合同专用章) below the star and an optional code (e.g. the
unified social credit code, GB 32100-2015) counter-curved along the bottom, after the
usual layout of Chinese enterprise seals. Images are PNGs with transparency so the seal
can be laid over a page; the same inputs always give the same bytes.
"""

from __future__ import annotations

import io
import math
import struct
import unicodedata
from collections.abc import Sequence
from pathlib import Path

from PIL import Image

from dangan.seals import _drawing
from dangan.seals.errors import SealAppearanceError, SealImageRejected, SealImageTooLarge

#: WenQuanYi Zen Hei (Debian package fonts-wqy-zenhei): covers GB 18030 hanzi and Latin.
DEFAULT_CJK_FONT = Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc")
#: The red of seal ink (印泥), as RGB.
SEAL_RED = (208, 16, 32)
MIN_SIZE_PX, MAX_SIZE_PX = 200, 2000
MAX_NAME_CHARS, MAX_CENTER_CHARS, MAX_BOTTOM_CHARS = 40, 20, 40
MIN_PAGES, MAX_PAGES = 2, 200
#: Smallest side an uploaded seal image may have, and its widest aspect ratio.
MIN_SIDE_PX, MAX_ASPECT = 32, 4.0

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_TRANSPARENT_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})
# Layout, as fractions of the seal's diameter.
_RING_OUTER, _RING_WIDTH = 0.49, 0.038
_NAME_EM, _NAME_GAP = 0.16, 0.018
_STAR_RADIUS = 0.17
_CENTER_EM, _CENTER_Y, _CENTER_MAX_WIDTH = 0.085, 0.235, 0.40
_CODE_EM, _CODE_GAP, _CODE_MAX_SPAN = 0.055, 0.014, 90.0


def render_round_seal(
    *,
    organisation: str,
    center_text: str | None = None,
    bottom_text: str | None = None,
    size_px: int = 600,
    colour: Sequence[int] = SEAL_RED,
    font_path: Path = DEFAULT_CJK_FONT,
) -> bytes:
    """Draw a round official seal as a ``size_px`` square RGBA PNG, transparent outside the ink.

    Blank ``center_text`` or ``bottom_text`` are left out. Raises
    :class:`SealAppearanceError` for text that is blank, too long or not in the font, a
    size outside 200..2000 px or a colour that is not three 0..255 integers.
    """
    name = _checked_text(organisation, field="organisation", limit=MAX_NAME_CHARS)
    center = _optional_text(center_text, field="center_text", limit=MAX_CENTER_CHARS)
    bottom = _optional_text(bottom_text, field="bottom_text", limit=MAX_BOTTOM_CHARS)
    _check_size(size_px)
    rgb = _checked_colour(colour)
    _drawing.require_glyphs(Path(font_path), name + (center or "") + (bottom or ""))

    # Supersample (at most ~4,800 px a side) and box-reduce: smooth ring and star edges.
    scale = max(1, min(4, 4800 // size_px))
    diameter = size_px * scale
    mask = Image.new("L", (diameter, diameter), 0)
    _drawing.draw_ring(mask, radius=_RING_OUTER * diameter, width=_RING_WIDTH * diameter)
    _drawing.draw_star(mask, radius=_STAR_RADIUS * diameter)
    _drawing.draw_arc_text(mask, _name_run(name, diameter), font_path=font_path)
    if center:
        _drawing.draw_line_text(
            mask,
            center,
            centre_y=diameter * (0.5 + _CENTER_Y),
            height=_CENTER_EM * diameter,
            max_width=_CENTER_MAX_WIDTH * diameter,
            font_path=font_path,
        )
    if bottom:
        _drawing.draw_arc_text(mask, _code_run(bottom, diameter), font_path=font_path)
    if scale > 1:
        mask = mask.reduce(scale)
    # Transparent pixels keep the ink's RGB so that resampling them never darkens edges.
    seal = Image.new("RGBA", mask.size, (*rgb, 0))
    seal.putalpha(mask)
    return _encode_png(seal)


def _name_run(name: str, diameter: int) -> _drawing.ArcText:
    """The organisation's name over 210° (8 characters or fewer) to 250° (24 or more).

    Names under six characters would stand far apart over 210°, so their characters
    are spaced 1.4 character heights apart instead, centred on the top.
    """
    count = len(name)
    span = min(250.0, max(210.0, 210.0 + (count - 8) * 2.5))
    inner = (_RING_OUTER - _RING_WIDTH - _NAME_GAP) * diameter
    height = _NAME_EM * diameter
    width = 0.8 * height
    if count > 1:
        loose = math.degrees(1.4 * height / (inner - height / 2)) * (count - 1)
        span = min(span, loose)
        pitch = (inner - height / 2) * math.radians(span) / (count - 1)
        width = min(width, 0.85 * pitch)
        # Squeeze letters down to half their height's width before making them shorter.
        height = min(height, width / 0.5)
    return _drawing.ArcText(
        text=name,
        radius=inner - height / 2,
        span_deg=span if count > 1 else 0.0,
        height=height,
        x_scale=width / height,
        outward=True,
    )


def _code_run(code: str, diameter: int) -> _drawing.ArcText:
    """The bottom code: small, evenly pitched, shrunk to stay within a 90° arc."""
    height = _CODE_EM * diameter
    radius = (_RING_OUTER - _RING_WIDTH - _CODE_GAP) * diameter - height / 2
    step = math.degrees(0.62 * height / radius)
    span = step * (len(code) - 1)
    if span > _CODE_MAX_SPAN:
        height *= _CODE_MAX_SPAN / span
        span = _CODE_MAX_SPAN
    return _drawing.ArcText(
        text=code, radius=radius, span_deg=span, height=height, x_scale=0.9, outward=False
    )


def accept_seal_image(png: bytes, *, max_bytes: int = 2 * 1024 * 1024, max_px: int = 4000) -> bytes:
    """Vet an uploaded seal image and return it cleaned: RGBA, no metadata, same pixels.

    The upload must be a single-frame PNG of at most ``max_bytes`` bytes and ``max_px``
    pixels a side (and within Pillow's decompression-bomb limit), at least 32 px a side,
    no wider than 4:1, whose alpha channel makes some pixels fully transparent and not
    all of them. Anything else raises :class:`SealImageRejected`.
    """
    return _encode_png(_decode_seal_png(png, max_bytes=max_bytes, max_px=max_px))


def slice_for_cross_page(png: bytes, *, pages: int) -> list[bytes]:
    """Cut a seal image into ``pages`` vertical strips for a cross-page seal (骑缝章).

    Strip *i* (left to right) goes at the right edge of page *i*, so the seal reassembles
    when the pages are fanned. Widths differ by at most one pixel when ``pages`` does not
    divide the width; they add up to the image's width. Each strip is an RGBA PNG.
    """
    if isinstance(pages, bool) or not isinstance(pages, int) or not MIN_PAGES <= pages <= MAX_PAGES:
        raise SealAppearanceError(f"pages must be an integer from {MIN_PAGES} to {MAX_PAGES}")
    seal = _decode_seal_png(png, max_bytes=2 * 1024 * 1024, max_px=4000)
    if pages > seal.width:
        raise SealAppearanceError(
            f"cannot cut a {seal.width} px wide seal into {pages} strips", width=seal.width
        )
    edges = [i * seal.width // pages for i in range(pages + 1)]
    return [
        _encode_png(seal.crop((left, 0, right, seal.height)))
        for left, right in zip(edges, edges[1:], strict=False)
    ]


def _decode_seal_png(png: bytes, *, max_bytes: int, max_px: int) -> Image.Image:
    """Decode an untrusted PNG to RGBA, or raise a :class:`SealImageRejected`."""
    if not isinstance(png, bytes | bytearray | memoryview):
        raise SealImageRejected("the seal image must be bytes")
    data = bytes(png)
    if len(data) > max_bytes:
        raise SealImageTooLarge(f"the seal image exceeds {max_bytes} bytes", max_bytes=max_bytes)
    # Read the size from IHDR before any decoder runs (PNG spec §11.2.2).
    if len(data) < 24 or not data.startswith(_PNG_SIGNATURE) or data[12:16] != b"IHDR":
        raise SealImageRejected("the seal image is not a PNG")
    _check_dimensions(*struct.unpack(">II", data[16:24]), max_px=max_px)
    try:
        with Image.open(io.BytesIO(data), formats=["PNG"]) as probe:
            probe.verify()  # chunk CRCs and structure, before decoding pixels
        with Image.open(io.BytesIO(data), formats=["PNG"]) as image:
            if getattr(image, "n_frames", 1) != 1:
                raise SealImageRejected("the seal image must not be animated")
            if image.mode not in _TRANSPARENT_MODES and "transparency" not in image.info:
                raise SealImageRejected("the seal image has no alpha channel")
            image.load()
            rgba = image.convert("RGBA")
    except SealAppearanceError:
        raise
    except Exception as exc:  # untrusted input: any decoder failure is a rejection
        raise SealImageRejected("the seal image cannot be decoded as a PNG") from exc
    low, high = rgba.getchannel("A").getextrema()
    if low != 0:
        raise SealImageRejected("the seal image has no transparent pixels")
    if high == 0:
        raise SealImageRejected("the seal image is fully transparent")
    return rgba


def _check_dimensions(width: int, height: int, *, max_px: int) -> None:
    if min(width, height) < MIN_SIDE_PX or max(width, height) > max_px:
        raise SealImageRejected(
            f"the seal image must be {MIN_SIDE_PX} to {max_px} px a side, not {width}x{height}"
        )
    # Pillow's own decompression-bomb limit, applied as a hard limit (it only warns below 2x).
    if Image.MAX_IMAGE_PIXELS and width * height > Image.MAX_IMAGE_PIXELS:
        raise SealImageRejected(f"the seal image has too many pixels ({width}x{height})")
    if max(width, height) > MAX_ASPECT * min(width, height):
        raise SealImageRejected(f"the seal image is too elongated ({width}x{height})")


def _encode_png(image: Image.Image) -> bytes:
    """PNG bytes of the pixels alone: a fresh image carries no metadata, and Pillow writes
    no tIME chunk, so equal pixels give equal bytes."""
    clean = Image.frombytes("RGBA", image.size, image.convert("RGBA").tobytes())
    out = io.BytesIO()
    clean.save(out, format="PNG", compress_level=6)
    return out.getvalue()


def _checked_text(text: object, *, field: str, limit: int) -> str:
    if not isinstance(text, str):
        raise SealAppearanceError(f"{field} must be a string")
    cleaned = unicodedata.normalize("NFC", text.strip())
    if not cleaned:
        raise SealAppearanceError(f"{field} must not be empty")
    if len(cleaned) > limit:
        raise SealAppearanceError(f"{field} is longer than {limit} characters", limit=limit)
    if any(unicodedata.category(ch)[0] in "CZ" and ch != " " for ch in cleaned):
        raise SealAppearanceError(f"{field} contains control or separator characters")
    return cleaned


def _optional_text(text: str | None, *, field: str, limit: int) -> str | None:
    if text is None or (isinstance(text, str) and not text.strip()):
        return None
    return _checked_text(text, field=field, limit=limit)


def _check_size(size_px: object) -> None:
    if isinstance(size_px, bool) or not isinstance(size_px, int):
        raise SealAppearanceError("size_px must be an integer")
    if not MIN_SIZE_PX <= size_px <= MAX_SIZE_PX:
        raise SealAppearanceError(f"size_px must be from {MIN_SIZE_PX} to {MAX_SIZE_PX}")


def _checked_colour(colour: object) -> tuple[int, int, int]:
    if isinstance(colour, Sequence) and not isinstance(colour, str) and len(colour) == 3:
        if all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= 255 for c in colour):
            return (colour[0], colour[1], colour[2])
    raise SealAppearanceError("colour must be three integers from 0 to 255 (R, G, B)")

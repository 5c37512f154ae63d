"""Private: drawing primitives for seal appearances, on a single-channel ink mask.

Everything is drawn white-on-black into an ``L`` image (255 = full ink) at a multiple of
the final size, then box-reduced; the caller colours the mask. One ink colour is what a
seal impression is, and a mask keeps compositing and antialiasing trivially correct.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from fontTools import ttLib
from PIL import Image, ImageDraw, ImageFont

from dangan.seals.errors import SealAppearanceError, SealFontUnavailable

# A regular pentagram's inner radius relative to its outer one: sin 18° / sin 54°.
_STAR_INNER_RATIO = math.sin(math.radians(18)) / math.sin(math.radians(54))


@dataclass(frozen=True)
class ArcText:
    """A run of characters set along a circle around the seal's centre."""

    text: str
    """The characters, in reading order."""
    radius: float
    """Distance from the centre to the middle of each character box, in canvas pixels."""
    span_deg: float
    """Angle between the first and the last character's middle, in degrees."""
    height: float
    """Em size of the characters, in canvas pixels."""
    x_scale: float
    """Horizontal squeeze of each glyph (seal lettering is taller than wide)."""
    outward: bool
    """True: tops face outwards, read clockwise over the top (an organisation name).
    False: tops face the centre, read left to right along the bottom (a code)."""


@functools.lru_cache(maxsize=8)
def _cmap(font_path: str) -> frozenset[int]:
    try:
        with ttLib.TTFont(font_path, fontNumber=0, lazy=True) as font:
            return frozenset(font.getBestCmap() or {})
    except (OSError, ttLib.TTLibError, AssertionError) as exc:
        raise SealFontUnavailable(f"cannot read the font {font_path}") from exc


@functools.lru_cache(maxsize=32)
def load_font(font_path: str, em: int) -> ImageFont.FreeTypeFont:
    """The first face of a TrueType/OpenType font or collection, at ``em`` pixels."""
    try:
        # BASIC layout: the same pixels whether or not libraqm is installed.
        return ImageFont.truetype(font_path, em, index=0, layout_engine=ImageFont.Layout.BASIC)
    except OSError as exc:
        raise SealFontUnavailable(f"cannot read the font {font_path}") from exc


def require_glyphs(font_path: Path, text: str) -> None:
    """Refuse text the font cannot draw, instead of stamping "tofu" boxes on a seal."""
    covered = _cmap(str(font_path))
    missing = list(dict.fromkeys(ch for ch in text if ord(ch) not in covered))
    if missing:
        raise SealAppearanceError(
            f"the seal font has no glyph for {''.join(missing)!r}", missing=missing
        )


def draw_ring(mask: Image.Image, *, radius: float, width: float) -> None:
    """A circle of ``width`` whose outer edge is at ``radius`` from the canvas centre."""
    c = mask.width / 2
    box = (c - radius, c - radius, c + radius, c + radius)
    ImageDraw.Draw(mask).ellipse(box, outline=255, width=round(width))


def draw_star(mask: Image.Image, *, radius: float) -> None:
    """A solid five-pointed star, point up, centred on the canvas."""
    c = mask.width / 2
    points = []
    for k in range(10):
        r = radius if k % 2 == 0 else radius * _STAR_INNER_RATIO
        theta = math.radians(36 * k)
        points.append((c + r * math.sin(theta), c - r * math.cos(theta)))
    ImageDraw.Draw(mask).polygon(points, fill=255)


def _ink_middle(font: ImageFont.FreeTypeFont, text: str) -> float:
    """How far above the baseline the middle of the run's ink lies, in pixels."""
    inked = [ch for ch in text if not ch.isspace()]
    if not inked:
        return 0.0
    tops, bottoms = zip(*(font.getbbox(ch, anchor="ls")[1::2] for ch in inked), strict=True)
    return -(min(tops) + max(bottoms)) / 2


def _weight(em: int) -> int:
    """Extra stroke width that gives the light CJK face an engraved seal's weight."""
    return round(em * 0.018)


def _glyph(font: ImageFont.FreeTypeFont, ch: str, *, lift: float, x_scale: float) -> Image.Image:
    """One character as an ink mask whose centre is the character box's centre."""
    em = font.size
    width, height = math.ceil(font.getlength(ch)) + 4, math.ceil(em * 1.5)
    tile = Image.new("L", (width, height), 0)
    ImageDraw.Draw(tile).text(
        (width / 2, height / 2 + lift),
        ch,
        fill=255,
        font=font,
        anchor="ms",
        stroke_width=_weight(em),
    )
    if x_scale != 1:
        tile = tile.resize((max(1, round(width * x_scale)), height), Image.Resampling.BICUBIC)
    return tile


def _stamp(mask: Image.Image, tile: Image.Image, *, at: tuple[float, float], turn: float) -> None:
    """Paste ``tile`` turned ``turn`` degrees anticlockwise, centred ``at``."""
    if turn:
        tile = tile.rotate(turn, resample=Image.Resampling.BICUBIC, expand=True)
    x, y = round(at[0] - tile.width / 2), round(at[1] - tile.height / 2)
    mask.paste(255, (x, y, x + tile.width, y + tile.height), tile)


def _angles(count: int, span_deg: float, *, outward: bool) -> Sequence[float]:
    """Clockwise-from-top angles of each character's middle, in reading order."""
    if count == 1:
        return [0.0 if outward else 180.0]
    step = span_deg / (count - 1)
    if outward:  # lower left, over the top, to lower right
        return [-span_deg / 2 + i * step for i in range(count)]
    return [180 + span_deg / 2 - i * step for i in range(count)]  # left to right, below


def draw_arc_text(mask: Image.Image, run: ArcText, *, font_path: Path) -> None:
    """Set ``run`` along its circle, each character turned to face the centre."""
    font = load_font(str(font_path), max(1, round(run.height)))
    lift = _ink_middle(font, run.text)
    c = mask.width / 2
    angles = _angles(len(run.text), run.span_deg, outward=run.outward)
    for ch, theta in zip(run.text, angles, strict=True):
        if ch.isspace():
            continue
        rad = math.radians(theta)
        at = (c + run.radius * math.sin(rad), c - run.radius * math.cos(rad))
        turn = -theta if run.outward else 180 - theta
        _stamp(mask, _glyph(font, ch, lift=lift, x_scale=run.x_scale), at=at, turn=turn)


def draw_line_text(
    mask: Image.Image,
    text: str,
    *,
    centre_y: float,
    height: float,
    max_width: float,
    font_path: Path,
) -> None:
    """Set ``text`` horizontally, centred at ``centre_y``, shrunk to fit ``max_width``."""
    font = load_font(str(font_path), max(1, round(height)))
    natural = font.getlength(text)
    if natural > max_width:  # squeeze first, then shrink, as seal engravers do
        squeeze = max_width / natural
        if squeeze < 0.7:
            font = load_font(str(font_path), max(1, round(height * squeeze / 0.7)))
            natural = font.getlength(text)
    x_scale = min(1.0, max_width / natural) if natural else 1.0
    lift = _ink_middle(font, text)
    width, tile_h = math.ceil(natural) + 4, math.ceil(font.size * 1.5)
    tile = Image.new("L", (width, tile_h), 0)
    ImageDraw.Draw(tile).text(
        (width / 2, tile_h / 2 + lift),
        text,
        fill=255,
        font=font,
        anchor="ms",
        stroke_width=_weight(font.size),
    )
    if x_scale < 1:
        tile = tile.resize((max(1, round(width * x_scale)), tile_h), Image.Resampling.BICUBIC)
    _stamp(mask, tile, at=(mask.width / 2, centre_y), turn=0)

"""Private: visible signature appearances, a PNG stamp image and/or text in a CJK font.

The appearance is the widget annotation's normal appearance stream (ISO 32000-2
§12.7.5.5, §12.5.5). Text is set in an embedded, subsetted OpenType/TrueType font through
pyHanko's ``GlyphAccumulator`` (HarfBuzz shaping, fontTools subsetting, a ToUnicode CMap
so the text can be copied and searched). A PNG keeps its transparency as a soft mask
(ISO 32000-2 §11.6.5.3).
"""

from __future__ import annotations

import functools
import hashlib
import io
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from fontTools import subset, ttLib
from PIL import Image, UnidentifiedImageError
from pyhanko.pdf_utils import generic, layout
from pyhanko.pdf_utils.font.api import FontEngineFactory
from pyhanko.pdf_utils.font.opentype import GlyphAccumulator
from pyhanko.pdf_utils.images import PdfImage, pil_image
from pyhanko.pdf_utils.text import TextBoxStyle
from pyhanko.pdf_utils.writer import BasePdfFileWriter, PdfFileWriter
from pyhanko.stamp import BaseStampStyle, StaticStampStyle, TextStampStyle

#: WenQuanYi Zen Hei (Debian package fonts-wqy-zenhei): covers GB 18030 hanzi and Latin.
DEFAULT_CJK_FONT = Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc")
#: Largest stamp image accepted, in pixels (a 2,048 x 2,048 seal scan is ample).
MAX_IMAGE_PIXELS = 2048 * 2048
_MIN_FONT_SIZE, _MAX_FONT_SIZE = 6, 24
# An image fills the box as far as its aspect ratio allows, centred.
_IMAGE_FIT = layout.SimpleBoxLayoutRule(
    x_align=layout.AxisAlignment.ALIGN_MID,
    y_align=layout.AxisAlignment.ALIGN_MID,
    inner_content_scaling=layout.InnerScaling.STRETCH_TO_FIT,
)
# Text keeps its size unless too long for the box, then shrinks; centred, 4 pt margins.
_TEXT_FIT = layout.SimpleBoxLayoutRule(
    x_align=layout.AxisAlignment.ALIGN_MID,
    y_align=layout.AxisAlignment.ALIGN_MID,
    margins=layout.Margins.uniform(4),
    inner_content_scaling=layout.InnerScaling.SHRINK_TO_FIT,
)


class AppearanceError(ValueError):
    """The stamp image or the font cannot be used; the caller maps it to a domain error."""


@dataclass(frozen=True)
class CjkFontFactory(FontEngineFactory):
    """Makes pyHanko glyph accumulators over one face of a TrueType font or collection."""

    font_bytes: bytes = field(repr=False)
    """A standalone TrueType/OpenType font (one face, already cut out of a .ttc)."""
    font_size: int
    """Size in points, used by pyHanko's text positioning."""

    def create_font_engine(
        self, writer: BasePdfFileWriter, obj_stream: generic.ObjectStream | None = None
    ) -> GlyphAccumulator:
        if obj_stream is None and writer.stream_xrefs:
            obj_stream = writer.prepare_object_stream()
        return GlyphAccumulator(
            writer=writer,
            font_handle=io.BytesIO(self.font_bytes),
            font_size=self.font_size,
            obj_stream=obj_stream,
        )


def stamp_style(
    *,
    image_png: bytes | None,
    text: str | None,
    box_height: float,
    font_path: Path,
) -> BaseStampStyle:
    """The pyHanko stamp style drawing ``image_png`` under ``text`` (either may be None)."""
    image = _pdf_image(image_png) if image_png is not None else None
    if not text:
        if image is None:
            raise AppearanceError("a visible appearance needs an image or text")
        return StaticStampStyle(
            background=image, background_layout=_IMAGE_FIT, background_opacity=1.0, border_width=0
        )
    lines = text.splitlines() or [text]
    size = int(min(_MAX_FONT_SIZE, max(_MIN_FONT_SIZE, box_height * 0.7 / len(lines))))
    font = CjkFontFactory(font_bytes=font_face(font_path), font_size=size)
    return TextStampStyle(
        # The text is a %-template for pyHanko (ts, signer); ours is literal.
        stamp_text="\n".join(lines).replace("%", "%%"),
        text_box_style=TextBoxStyle(font=font, font_size=size),
        inner_content_layout=_TEXT_FIT,
        background=image,
        background_layout=_IMAGE_FIT,
        background_opacity=1.0,
        border_width=0,
    )


@functools.lru_cache(maxsize=4)
def font_face(path: Path) -> bytes:
    """The first face of the font at ``path`` as a standalone font, read once per process.

    pyHanko's glyph accumulator reads single fonts only; a TrueType collection (.ttc) is
    cut down to its first face here. Tables fontTools cannot subset (bitmap fonts, tool
    stamps: nothing a PDF renderer uses) are dropped now rather than with a warning each
    time the font is subsetted into a signature.
    """
    try:
        is_collection = Path(path).read_bytes()[:4] == b"ttcf"
        font = ttLib.TTFont(path, fontNumber=0 if is_collection else -1, lazy=False)
        for tag in _unsubsettable_tables(font):
            del font[tag]
        out = io.BytesIO()
        font.save(out)
    except (OSError, ttLib.TTLibError) as exc:
        raise AppearanceError(f"cannot read the font {path}") from exc
    return out.getvalue()


def _unsubsettable_tables(font: ttLib.TTFont) -> list[str]:
    keep_as_is = subset.Options().no_subset_tables
    return [
        tag
        for tag in font.keys()  # noqa: SIM118 (a TTFont has keys() but no __iter__)
        if tag != "GlyphOrder"
        and tag.strip() not in keep_as_is
        and not hasattr(ttLib.getTableClass(tag), "subset_glyphs")
    ]


def _pdf_image(png: bytes) -> PdfImage:
    image, encoded = _decoded_png(hashlib.sha256(png).digest(), png)
    return _PrecompressedImage(image, encoded)


@functools.lru_cache(maxsize=64)
def _decoded_png(_digest: bytes, png: bytes) -> tuple[Image.Image, tuple[_EncodedStream, ...]]:
    """The image and its XObject streams, Flate-compressed once per process.

    A seal image goes into every PDF its seal signs; compressing its pixels again each
    time (milliseconds for a 600 px seal) would cost more than the signature. Keyed by
    the PNG's digest: the PNG is only kept alongside it to build the entry.
    """
    image = _open_png(png)
    if image.width * image.height > MAX_IMAGE_PIXELS:
        raise AppearanceError(f"the stamp image exceeds {MAX_IMAGE_PIXELS} pixels")
    try:
        image.load()
    except (OSError, SyntaxError, ValueError) as exc:
        raise AppearanceError("the stamp image is not a readable PNG") from exc
    image = _pdf_mode(image)
    scratch = PdfFileWriter()
    main = pil_image(image, scratch).get_object()
    streams = []
    if "/SMask" in main:
        streams.append(_encoded(main["/SMask"]))  # the soft mask first: the image names it
    streams.append(_encoded(main))
    return image, tuple(streams)


@dataclass(frozen=True)
class _EncodedStream:
    """An image XObject's dictionary (minus /SMask) and its compressed data."""

    entries: tuple[tuple[str, generic.PdfObject], ...]
    data: bytes = field(repr=False)


def _encoded(stream: generic.StreamObject) -> _EncodedStream:
    entries = tuple((k, v) for k, v in stream.items() if k not in ("/SMask", "/Length"))
    return _EncodedStream(entries, stream.encoded_data)


class _PrecompressedImage(PdfImage):
    """A :class:`PdfImage` whose XObjects are copied in already compressed."""

    def __init__(self, image: Image.Image, encoded: tuple[_EncodedStream, ...]) -> None:
        super().__init__(image)
        self._encoded = encoded

    @property
    def image_ref(self) -> generic.IndirectObject:
        assert self.writer is not None
        ref = self._image_ref
        if ref is None or ref.get_pdf_handler() is not self.writer:
            smask = None
            for stream in self._encoded:
                entries = dict(stream.entries)
                if smask is not None:
                    entries["/SMask"] = smask
                ref = self.writer.add_object(
                    generic.StreamObject(
                        generic.DictionaryObject(
                            {generic.pdf_name(k): v for k, v in entries.items()}
                        ),
                        encoded_data=stream.data,
                    )
                )
                smask = ref
            self._image_ref = ref
        assert ref is not None
        return ref


def _open_png(png: bytes) -> Image.Image:
    """The PNG's header read; a decompression bomb is refused, not warned about."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(png), formats=["PNG"])
    except (
        UnidentifiedImageError,
        OSError,
        SyntaxError,
        ValueError,
        Image.DecompressionBombWarning,
        Image.DecompressionBombError,
    ) as exc:
        raise AppearanceError("the stamp image is not a readable PNG") from exc


def _pdf_mode(image: Image.Image) -> Image.Image:
    """RGB(A) or L(A), the modes pyHanko embeds; palette transparency becomes alpha."""
    if image.mode in ("L", "LA") and "transparency" not in image.info:
        return image
    has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    return image.convert("RGBA" if has_alpha else "RGB")

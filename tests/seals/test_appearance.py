"""Seal appearances: the drawn round seal, vetted uploads and cross-page slices."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, PngImagePlugin

from dangan.errors import DanganError
from dangan.seals import (
    DEFAULT_CJK_FONT,
    SEAL_RED,
    SealAppearanceError,
    SealFontUnavailable,
    SealImageRejected,
    SealImageTooLarge,
    accept_seal_image,
    render_round_seal,
    slice_for_cross_page,
)

NAME = "北京市档案数字化服务有限公司"
LATIN_ONLY_FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
SIZE = 600


def _rgba(png: bytes) -> Image.Image:
    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG"
        image.load()
        return image.copy()


def _chunk_types(png: bytes) -> list[bytes]:
    types, pos = [], 8
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        types.append(png[pos + 4 : pos + 8])
        pos += 12 + length
    return types


def _ink(image: Image.Image, box: tuple[int, int, int, int]) -> int:
    """Number of clearly inked pixels (alpha > 128) inside ``box``."""
    alpha = image.getchannel("A").crop(box).point(lambda a: 255 if a > 128 else 0)
    return alpha.histogram()[255]


def _upper_arc_band(image: Image.Image) -> Image.Image:
    """Only the pixels between the star and the ring, above the centre line."""
    d = image.width
    keep = Image.new("L", image.size, 0)
    draw = ImageDraw.Draw(keep)
    draw.ellipse((0.07 * d, 0.07 * d, 0.93 * d, 0.93 * d), fill=255)  # inside the ring
    draw.ellipse((0.31 * d, 0.31 * d, 0.69 * d, 0.69 * d), fill=0)  # outside the star
    draw.rectangle((0, d / 2, d, d), fill=0)
    band = Image.new("RGBA", image.size, (0, 0, 0, 0))
    band.paste(image, mask=keep)
    return band


def _png(width: int, height: int, *, colour_type: int, bit_depth: int, raw: bytes) -> bytes:
    """A PNG assembled chunk by chunk, for images Pillow would refuse to write."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + body))
        return struct.pack(">I", len(body)) + kind + body + crc

    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def _saved(image: Image.Image, fmt: str = "PNG", **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


@pytest.fixture(scope="module")
def seal_png() -> bytes:
    return render_round_seal(
        organisation=NAME, center_text="合同专用章", bottom_text="91110108MA01ABCD2X", size_px=SIZE
    )


# --- the drawn seal ----------------------------------------------------------------------


def test_seal_is_rgba_png_with_transparent_corners_and_red_ring(
    seal_png: bytes, tmp_path: Path
) -> None:
    sample = tmp_path / "seal.png"  # tests/seals/out/ is not git-ignored, so not there
    sample.write_bytes(seal_png)
    image = _rgba(sample.read_bytes())
    assert image.mode == "RGBA" and image.size == (SIZE, SIZE)
    for corner in [(0, 0), (SIZE - 1, 0), (0, SIZE - 1), (SIZE - 1, SIZE - 1), (40, 40)]:
        assert image.getpixel(corner)[3] == 0
    # The ring's middle (outer edge at 0.49 D, 0.038 D wide) on the four compass points.
    ring = round(SIZE * (0.01 + 0.019))
    for point in [(SIZE // 2, ring), (ring, SIZE // 2), (SIZE - 1 - ring, SIZE // 2)]:
        assert image.getpixel(point) == (*SEAL_RED, 255)


def test_star_is_solid_and_centred(seal_png: bytes) -> None:
    image = _rgba(seal_png)
    c = SIZE // 2
    assert image.getpixel((c, c)) == (*SEAL_RED, 255)
    star = image.getchannel("A").crop((c - 100, c - 100, c + 100, c + 100))
    mirrored = star.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    left, top, right, bottom = star.getbbox()
    assert abs(left - (200 - right)) <= 2  # horizontally centred
    assert top < 200 - bottom  # point up: the top tip reaches further than the feet
    diff = sum(abs(a - b) for a, b in zip(star.tobytes(), mirrored.tobytes(), strict=True))
    assert diff / (255 * 200 * 200) < 0.005  # left-right symmetric


def test_same_inputs_give_the_same_bytes_without_metadata(seal_png: bytes) -> None:
    again = render_round_seal(
        organisation=NAME, center_text="合同专用章", bottom_text="91110108MA01ABCD2X", size_px=SIZE
    )
    assert again == seal_png
    assert set(_chunk_types(seal_png)) == {b"IHDR", b"IDAT", b"IEND"}


def test_the_organisation_name_is_drawn_along_the_upper_arc(seal_png: bytes) -> None:
    named = _upper_arc_band(_rgba(seal_png))
    other = _upper_arc_band(_rgba(render_round_seal(organisation="上海图书馆藏品保护有限公司", size_px=SIZE)))
    assert _ink(named, (0, 0, SIZE, SIZE)) > 0.04 * SIZE * SIZE
    assert named.getchannel("A").tobytes() != other.getchannel("A").tobytes()


def test_center_and_bottom_text_add_ink_below_the_star(seal_png: bytes) -> None:
    bare = _rgba(render_round_seal(organisation=NAME, size_px=SIZE))
    full = _rgba(seal_png)
    center_box = (SIZE * 3 // 10, SIZE * 69 // 100, SIZE * 7 // 10, SIZE * 78 // 100)
    bottom_box = (SIZE * 4 // 10, SIZE * 85 // 100, SIZE * 6 // 10, SIZE * 93 // 100)
    assert _ink(bare, center_box) == 0 and _ink(full, center_box) > 1000
    assert _ink(bare, bottom_box) == 0 and _ink(full, bottom_box) > 300


def test_a_font_without_cjk_glyphs_is_refused_instead_of_drawing_tofu() -> None:
    with pytest.raises(SealAppearanceError) as caught:
        render_round_seal(organisation="档案 ACME", font_path=LATIN_ONLY_FONT, size_px=200)
    assert caught.value.extra["missing"] == ["档", "案"]
    name = "ACME ARCHIVES LTD"
    latin = render_round_seal(organisation=name, font_path=LATIN_ONLY_FONT, size_px=200)
    cjk_face = render_round_seal(organisation=name, size_px=200)
    assert latin != cjk_face  # the font really is the one drawn with


def test_a_missing_font_is_an_operator_error(tmp_path: Path) -> None:
    with pytest.raises(SealFontUnavailable) as caught:
        render_round_seal(organisation="档案馆", font_path=tmp_path / "none.ttf")
    assert caught.value.status == 500


@pytest.mark.parametrize(
    "options",
    [
        {"organisation": ""},
        {"organisation": "   "},
        {"organisation": "档" * 41},
        {"organisation": "档案\n馆"},
        {"organisation": 42},
        {"organisation": "档案馆", "center_text": "章" * 21},
        {"organisation": "档案馆", "bottom_text": "9" * 41},
        {"organisation": "档案馆", "size_px": 199},
        {"organisation": "档案馆", "size_px": 2001},
        {"organisation": "档案馆", "size_px": True},
        {"organisation": "档案馆", "colour": (256, 0, 0)},
        {"organisation": "档案馆", "colour": "red"},
        {"organisation": "档案馆", "colour": (255, 0)},
    ],
)
def test_invalid_seal_inputs_are_typed_errors(options: dict) -> None:
    with pytest.raises(SealAppearanceError) as caught:
        render_round_seal(**options)
    assert isinstance(caught.value, DanganError)
    assert (caught.value.code, caught.value.status) == ("seal_appearance_invalid", 422)


def test_limits_are_inclusive() -> None:
    assert _rgba(render_round_seal(organisation="档" * 40, size_px=200)).size == (200, 200)
    largest = render_round_seal(organisation="档", center_text=" ", size_px=2000)
    assert _rgba(largest).size == (2000, 2000)
    assert DEFAULT_CJK_FONT.exists()


# --- cross-page slices -------------------------------------------------------------------


@pytest.mark.parametrize("pages", [2, 3, 7, 200])
def test_slices_reassemble_the_seal_exactly(seal_png: bytes, pages: int) -> None:
    original = _rgba(seal_png)
    strips = [_rgba(png) for png in slice_for_cross_page(seal_png, pages=pages)]
    assert len(strips) == pages
    assert all(s.mode == "RGBA" and s.height == original.height for s in strips)
    widths = [s.width for s in strips]
    assert sum(widths) == original.width and max(widths) - min(widths) <= 1
    joined = Image.new("RGBA", original.size)
    x = 0
    for strip in strips:
        joined.paste(strip, (x, 0))
        x += strip.width
    assert joined.tobytes() == original.tobytes()


@pytest.mark.parametrize("pages", [1, 0, 201, True, 2.0])
def test_page_count_out_of_range_is_refused(seal_png: bytes, pages: object) -> None:
    with pytest.raises(SealAppearanceError):
        slice_for_cross_page(seal_png, pages=pages)  # type: ignore[arg-type]


def test_more_pages_than_pixel_columns_is_refused() -> None:
    narrow = Image.new("RGBA", (40, 40), (0, 0, 0, 0))
    narrow.putpixel((20, 20), (*SEAL_RED, 255))
    with pytest.raises(SealAppearanceError) as caught:
        slice_for_cross_page(_saved(narrow), pages=41)
    assert caught.value.extra["width"] == 40
    assert len(slice_for_cross_page(_saved(narrow), pages=40)) == 40


def test_slicing_vets_its_input_like_an_upload() -> None:
    with pytest.raises(SealImageRejected):
        slice_for_cross_page(b"not a png", pages=2)


# --- uploads -----------------------------------------------------------------------------


def test_an_upload_keeps_its_pixels_and_loses_its_metadata(seal_png: bytes) -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "someone")
    info.add_itxt("Comment", "评论", zip=True)
    tagged = _saved(_rgba(seal_png), pnginfo=info, dpi=(300, 300))
    cleaned = accept_seal_image(tagged)
    assert set(_chunk_types(cleaned)) == {b"IHDR", b"IDAT", b"IEND"}
    assert _rgba(cleaned).tobytes() == _rgba(seal_png).tobytes()


def test_a_palette_png_with_transparency_becomes_rgba() -> None:
    image = Image.new("P", (64, 64), 0)
    image.putpalette([255, 255, 255, *SEAL_RED] + [0] * 762)
    image.paste(1, (16, 16, 48, 48))
    cleaned = _rgba(accept_seal_image(_saved(image, transparency=0)))
    assert cleaned.mode == "RGBA"
    assert cleaned.getpixel((0, 0))[3] == 0 and cleaned.getpixel((32, 32)) == (*SEAL_RED, 255)


def _opaque_rgba() -> bytes:
    return _saved(Image.new("RGBA", (64, 64), (*SEAL_RED, 255)))


def _truncated(seal: bytes) -> bytes:
    return seal[: len(seal) // 2]


def _bad_crc(seal: bytes) -> bytes:
    broken = bytearray(seal)
    broken[len(broken) // 2] ^= 0xFF
    return bytes(broken)


def _bomb() -> bytes:
    """10,000 x 10,000 pixels in a few kilobytes (one-bit greyscale, all zero)."""
    row = b"\x00" + bytes(10_000 // 8)
    return _png(10_000, 10_000, colour_type=0, bit_depth=1, raw=row * 10_000)


HOSTILE = {
    "empty": (lambda seal: b"", "not a PNG"),
    "text": (lambda seal: b"hello, this is not an image", "not a PNG"),
    "signature_only": (lambda seal: b"\x89PNG\r\n\x1a\n", "not a PNG"),
    "jpeg": (lambda seal: _saved(Image.new("RGB", (64, 64), SEAL_RED), "JPEG"), "not a PNG"),
    "gif_with_transparency": (
        lambda seal: _saved(Image.new("P", (64, 64), 0), "GIF", transparency=0),
        "not a PNG",
    ),
    "rgb_png_without_alpha": (
        lambda seal: _saved(Image.new("RGB", (64, 64), SEAL_RED)),
        "no alpha channel",
    ),
    "greyscale_png": (lambda seal: _saved(Image.new("L", (64, 64), 0)), "no alpha channel"),
    "fully_opaque": (lambda seal: _opaque_rgba(), "no transparent pixels"),
    "fully_transparent": (
        lambda seal: _saved(Image.new("RGBA", (64, 64), (0, 0, 0, 0))),
        "fully transparent",
    ),
    "bomb_10000x10000": (lambda seal: _bomb(), "px a side"),
    "truncated": (_truncated, "cannot be decoded"),
    "corrupted_crc": (_bad_crc, "cannot be decoded"),
    "too_small": (lambda seal: _saved(Image.new("RGBA", (8, 8), (0, 0, 0, 0))), "px a side"),
    "elongated": (lambda seal: _saved(Image.new("RGBA", (400, 40), (0, 0, 0, 0))), "elongated"),
    "animated": (
        lambda seal: _saved(
            _rgba(seal), save_all=True, append_images=[Image.new("RGBA", (SIZE, SIZE))]
        ),
        "animated",
    ),
}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_hostile_uploads_are_typed_errors(seal_png: bytes, kind: str) -> None:
    make, reason = HOSTILE[kind]
    with pytest.raises(SealImageRejected, match=reason) as caught:
        accept_seal_image(make(seal_png))
    assert (caught.value.code, caught.value.status) == ("seal_image_rejected", 422)


def test_the_bomb_is_refused_even_with_a_raised_side_limit() -> None:
    # Pillow's decompression-bomb limit (~89 Mpx) still applies when max_px allows 10,000.
    with pytest.raises(SealImageRejected, match="too many pixels"):
        accept_seal_image(_bomb(), max_px=20_000)


def test_an_upload_over_the_byte_limit_is_413(seal_png: bytes) -> None:
    with pytest.raises(SealImageTooLarge) as caught:
        accept_seal_image(seal_png, max_bytes=len(seal_png) - 1)
    assert (caught.value.code, caught.value.status) == ("seal_image_too_large", 413)
    assert accept_seal_image(seal_png, max_bytes=len(seal_png))


def test_an_upload_that_is_not_bytes_is_refused() -> None:
    with pytest.raises(SealImageRejected):
        accept_seal_image("iVBORw0KGgo=")  # type: ignore[arg-type]

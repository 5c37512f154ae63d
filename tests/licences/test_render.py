"""Licence PDFs, checked with the tools a reader has: poppler (pdffonts, pdftotext,
pdftoppm), zbar, pyHanko's PDF reader, and segno as the reference QR encoder."""

from __future__ import annotations

import dataclasses
import random
import re
import shutil
import subprocess
import sys
import threading
import xml.etree.ElementTree as ET
from datetime import date
from io import BytesIO
from pathlib import Path

import pytest
import segno
from PIL import Image
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader

from dangan.licences import _qr
from dangan.licences.qr_overlay import draw_qr
from dangan.licences.render import (
    LicenceField,
    LicenceRenderError,
    LicenceRendering,
    RenderedLicence,
    find_cjk_font,
    make_qr,
    render_licence_pdf,
)

DPI = 150
PX_PER_MM = DPI / 25.4
PT_PER_MM = 72 / 25.4
A4_MM = (210.0, 297.0)

# 426 upper-case characters: the most a version 15 symbol holds at level Q in
# alphanumeric mode (ISO/IEC 18004:2015 Table 7), so the largest QR a licence carries.
BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
PREFIX = "HTTPS://LICENCE.EXAMPLE.GOV.CN/V/"
LONGEST_URL = PREFIX + (BASE32 * 13)[: 426 - len(PREFIX)]
PREMISES = (
    "北京市海淀区中关村大街1号院2号楼一层101室（东侧）、二层201室至205室，以及地下一层B101室"
    "仓储区域；Building 2, No. 1 Zhongguancun Street, Haidian District, Beijing 100080, "
    "China, ground floor unit 101 (east) and second floor units 201 to 205, plus basement B101"
)


def licence(**changes: object) -> LicenceRendering:
    base = LicenceRendering(
        title_zh="食品经营许可证",
        title_en="Food Business Licence",
        identifier="1.2.156.3005.2.SPJY.91110000600037341L.482910374615.1.K",
        holder_label_zh="经营者",
        holder_label_en="Operator",
        holder_name="北京市海淀区示例餐饮管理有限公司",
        holder_id_label_zh="统一社会信用代码",
        holder_id_label_en="Unified social credit code",
        holder_id="91110000600037341L",
        fields=(
            LicenceField("法定代表人", "Legal representative", "张三"),
            LicenceField("经营场所", "Business premises", PREMISES),
            LicenceField("主体业态", "Type of operation", "餐饮服务经营者（中型餐馆）"),
            LicenceField(
                "经营项目",
                "Business scope",
                "热食类食品制售；冷食类食品制售；糕点类食品制售（含裱花蛋糕）",
            ),
        ),
        issuer_name="北京市海淀区市场监督管理局",
        valid_from=date(2025, 3, 1),
        valid_until=date(2030, 2, 28),
        issued_on=date(2025, 3, 1),
    )
    return dataclasses.replace(base, **changes)


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed (Debian: poppler-utils / zbar-tools)")
    return path


@pytest.fixture(scope="module", autouse=True)
def cjk_font() -> Path:
    try:
        return find_cjk_font()
    except LicenceRenderError as exc:
        pytest.skip(f"no CJK font (Debian fonts-wqy-zenhei): {exc}")


@pytest.fixture(scope="module")
def rendered() -> RenderedLicence:
    return render_licence_pdf(licence())


def with_qr(rendered: RenderedLicence, url: str) -> bytes:
    """The rendered licence with the QR of ``url`` drawn in a second revision, as
    issuance draws it (there in the seal's own update)."""
    writer = IncrementalPdfFileWriter(BytesIO(rendered.pdf))
    draw_qr(writer, make_qr(url), box_mm=rendered.qr_box_mm, page_height_mm=A4_MM[1])
    out = BytesIO()
    writer.write(out)
    return out.getvalue()


@pytest.fixture(scope="module")
def pdf_file(rendered: RenderedLicence, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("licence") / "licence.pdf"
    path.write_bytes(with_qr(rendered, LONGEST_URL))
    return path


def raster(pdf: Path) -> Path:
    need("pdftoppm")
    subprocess.run(
        [
            "pdftoppm",
            "-r",
            str(DPI),
            "-png",
            "-f",
            "1",
            "-l",
            "1",
            "-singlefile",
            str(pdf),
            str(pdf.with_suffix("")),
        ],
        check=True,
        capture_output=True,
    )
    return pdf.with_suffix(".png")


@pytest.fixture(scope="module")
def page_png(pdf_file: Path) -> Path:
    return raster(pdf_file)


def zbar(png: Path) -> list[str]:
    need("zbarimg")
    # zbarimg exits 4 when it finds nothing; stderr carries D-Bus noise in containers.
    done = subprocess.run(["zbarimg", "--raw", "-q", str(png)], check=False, capture_output=True)
    assert done.returncode in (0, 4), done.stderr
    return done.stdout.decode().splitlines()


def dark_box_mm(png: Path, box_mm: tuple[float, float, float, float]) -> tuple[float, ...]:
    """The bounding box (x0, y0, x1, y1, mm from the top-left) of dark pixels in box_mm."""
    x, y, w, h = (round(v * PX_PER_MM) for v in box_mm)
    crop = Image.open(png).convert("L").crop((x, y, x + w, y + h))
    bbox = crop.point(lambda v: 255 if v < 128 else 0).getbbox()
    if bbox is None:
        return ()
    left, top, right, bottom = bbox
    return tuple(v / PX_PER_MM for v in (x + left, y + top, x + right, y + bottom))


def qr_square(rendered: RenderedLicence) -> tuple[float, float, float, float]:
    x, y, side = rendered.qr_box_mm
    return (x, y, side, side)


def words(pdf: Path) -> list[tuple[str, float, float, float, float]]:
    """pdftotext -bbox words as (text, xMin, yMin, xMax, yMax) in mm from the top-left."""
    need("pdftotext")
    html = subprocess.run(
        ["pdftotext", "-bbox", str(pdf), "-"], check=True, capture_output=True
    ).stdout.decode()
    found = re.findall(
        r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" '
        r'yMax="([\d.]+)">([^<]*)</word>',
        html,
    )
    return [(t, *(float(v) / PT_PER_MM for v in box)) for *box, t in found]


def text_of(pdf: Path) -> str:
    need("pdftotext")
    return subprocess.run(
        ["pdftotext", str(pdf), "-"], check=True, capture_output=True
    ).stdout.decode()


def test_the_cjk_font_is_embedded(pdf_file: Path) -> None:
    need("pdffonts")
    out = subprocess.run(["pdffonts", str(pdf_file)], check=True, capture_output=True)
    rows = out.stdout.decode().splitlines()[2:]
    assert rows, "no fonts listed"
    assert any("WenQuanYi" in row for row in rows)
    for row in rows:  # name type encoding emb sub uni object ID
        assert row.split()[-5:-3] == ["yes", "yes"], f"not an embedded subset: {row}"


def test_the_text_can_be_extracted(pdf_file: Path) -> None:
    text = text_of(pdf_file)
    for expected in (
        "食品经营许可证",
        "Food Business Licence",
        licence().identifier,
        "北京市海淀区示例餐饮管理有限公司",
        "91110000600037341L",
        "北京市海淀区市场监督管理局",
        "2030年02月28日",
        "扫码核验",
    ):
        assert expected in text


def test_the_qr_decodes_from_a_150_dpi_raster(page_png: Path) -> None:
    # Acceptance: a licence PDF printed to PNG at 150 dpi has a QR that zbar decodes.
    assert zbar(page_png) == [LONGEST_URL]


def test_the_qr_prints_at_least_25_mm_wide(rendered: RenderedLicence, page_png: Path) -> None:
    version = make_qr(LONGEST_URL).version
    assert version == 15
    x0, y0, x1, y1 = dark_box_mm(page_png, qr_square(rendered))
    width, modules = x1 - x0, 17 + 4 * version
    assert width >= 25.0
    assert abs((y1 - y0) - width) < 2 / PX_PER_MM  # square
    assert width / modules >= 0.5 - 1 / PX_PER_MM / modules  # modules of at least 0.5 mm


def test_the_seal_box_is_on_the_page_over_the_issuer_and_clear_of_the_qr(
    rendered: RenderedLicence, pdf_file: Path, page_png: Path
) -> None:
    x, y, w, h = rendered.seal_box_mm
    assert (w, h) == (42.0, 42.0)
    assert 0 <= x and x + w <= A4_MM[0] and 0 <= y and y + h <= A4_MM[1]
    qx0, qy0, qx1, qy1 = dark_box_mm(page_png, qr_square(rendered))
    assert x >= qx1 or x + w <= qx0 or y >= qy1 or y + h <= qy0, "seal over the QR"
    bx, by, side = rendered.qr_box_mm
    assert x >= bx + side or y + h <= by, "seal over the QR square"
    # The issuer and the issue date (the body above also has the valid-from date).
    issuer = [
        wd
        for wd in words(pdf_file)
        if wd[0] in ("北京市海淀区市场监督管理局", "2025年03月01日") and wd[2] > 200
    ]
    assert len(issuer) == 2
    for _, x0, y0, x1, y1 in issuer:  # the seal sits centred over them, as on paper
        assert x <= (x0 + x1) / 2 <= x + w and y <= y0 and y1 <= y + h


def test_long_values_wrap_inside_the_value_column(pdf_file: Path) -> None:
    found = words(pdf_file)
    assert max(x1 for _, _, _, x1, _ in found) <= 190.5  # the text column's right edge
    lines = {round(y0, 1) for t, _, y0, _, _ in found if t in ("Zhongguancun", "basement")}
    assert len(lines) == 2, "the long field was not wrapped"
    assert "basement B101" in text_of(pdf_file)


def test_no_expiry_prints_changqi(tmp_path: Path) -> None:
    path = tmp_path / "l.pdf"
    path.write_bytes(render_licence_pdf(licence(valid_until=None)).pdf)
    assert "长期" in text_of(path)


def test_a_url_too_long_for_version_15_is_refused() -> None:
    with pytest.raises(LicenceRenderError) as caught:
        make_qr(LONGEST_URL + "A")
    assert caught.value.code == "licence_render_failed"
    assert caught.value.status == 422
    assert caught.value.extra["qr_version"] == 16


def test_text_that_does_not_fit_is_refused() -> None:
    fields = tuple(LicenceField(f"项目{i}", f"Item {i}", "许可" * 100) for i in range(20))
    with pytest.raises(LicenceRenderError, match="does not fit"):
        render_licence_pdf(licence(fields=fields))


def test_characters_the_font_lacks_are_refused() -> None:
    with pytest.raises(LicenceRenderError, match="no glyph") as caught:
        render_licence_pdf(licence(holder_name="示例公司\U0001f600"))
    assert caught.value.extra["missing"] == ["\U0001f600"]


def test_a_missing_font_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from dangan.licences import render

    monkeypatch.setattr(render, "_KNOWN_CJK_FONTS", (tmp_path / "none.ttc",))
    with pytest.raises(LicenceRenderError, match="apt-get install fonts-wqy-zenhei"):
        find_cjk_font()
    with pytest.raises(LicenceRenderError, match="cannot use the font"):
        render_licence_pdf(licence(), font_path=tmp_path / "none.ttc")


def test_the_same_input_gives_the_same_bytes(rendered: RenderedLicence, tmp_path: Path) -> None:
    assert render_licence_pdf(licence()).pdf == rendered.pdf
    # A fresh process too (an idempotent retry may land on another worker).
    out = tmp_path / "again.pdf"
    code = (
        "import sys; from pathlib import Path; from tests.licences.test_render import licence;"
        "from dangan.licences.render import render_licence_pdf;"
        "Path(sys.argv[1]).write_bytes(render_licence_pdf(licence()).pdf)"
    )
    subprocess.run(
        [sys.executable, "-c", code, str(out)], check=True, cwd=Path(__file__).parents[2]
    )
    assert out.read_bytes() == rendered.pdf
    assert render_licence_pdf(licence(issued_on=date(2025, 3, 2))).pdf != rendered.pdf


def test_concurrent_renders_give_the_same_bytes(rendered: RenderedLicence) -> None:
    results: list[bytes] = []
    threads = [
        threading.Thread(
            target=lambda: results.extend(render_licence_pdf(licence()).pdf for _ in range(3))
        )
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [rendered.pdf] * 12


def test_the_rendering_leaves_the_qr_square_blank(
    rendered: RenderedLicence, tmp_path: Path
) -> None:
    # Another licence: the QR square and the seal stay where they are.
    blank = render_licence_pdf(licence(valid_until=None))
    assert blank.qr_box_mm == rendered.qr_box_mm
    assert blank.seal_box_mm == rendered.seal_box_mm
    path = tmp_path / "blank.pdf"
    path.write_bytes(blank.pdf)
    png = raster(path)
    assert zbar(png) == []
    assert dark_box_mm(png, qr_square(blank)) == ()


def test_the_pdfa_2b_parts(rendered: RenderedLicence) -> None:
    pdf = rendered.pdf
    reader = PdfFileReader(BytesIO(pdf), strict=True)
    intent = reader.root["/OutputIntents"][0]
    assert intent["/S"] == "/GTS_PDFA1"
    assert intent["/DestOutputProfile"]["/N"] == 3
    assert intent["/DestOutputProfile"].data[36:40] == b"acsp"  # an ICC profile
    metadata = reader.root["/Metadata"]
    assert "/Filter" not in metadata  # ISO 19005-2 §6.6.2.1
    xmp = ET.fromstring(metadata.data)
    ns = {
        "pdfaid": "http://www.aiim.org/pdfa/ns/id/",
        "dc": "http://purl.org/dc/elements/1.1/",
        "xmp": "http://ns.adobe.com/xap/1.0/",
    }
    assert xmp.findtext(".//pdfaid:part", namespaces=ns) == "2"
    assert xmp.findtext(".//pdfaid:conformance", namespaces=ns) == "B"
    info = reader.trailer["/Info"]
    assert xmp.findtext(".//dc:title//{*}li", namespaces=ns) == info["/Title"]
    assert xmp.findtext(".//dc:creator//{*}li", namespaces=ns) == info["/Author"]
    assert xmp.findtext(".//xmp:CreateDate", namespaces=ns) == "2025-03-01T00:00:00+08:00"
    assert info["/CreationDate"] == "D:20250301000000+08'00'"
    # §6.1.7.1: an EOL before every endstream; the moved xref still points at each object.
    assert all(pdf[m.start() - 1] == 0x0A for m in re.finditer(rb"endstream", pdf))
    xref_at = int(pdf[pdf.rindex(b"startxref") + 9 :].split()[0])
    count = int(pdf[xref_at:].split()[2])
    table = pdf[xref_at:].split(b"\n", 2)[2]
    for k in range(1, count):
        assert pdf[int(table[20 * k : 20 * k + 10]) :].startswith(b"%d 0 obj" % k)


@pytest.mark.parametrize("seed", range(4))
def test_the_qr_symbol_is_the_one_segno_makes(seed: int) -> None:
    # _qr chooses the data mask faster than segno; the symbol must not change, for any
    # version the licence allows (1-15) and any of the eight masks.
    rnd = random.Random(seed)
    versions, masks = set(), set()
    for length in [1, 20, *sorted(rnd.sample(range(2, 426), 40)), 426]:
        url = PREFIX[:8] + "".join(rnd.choice(BASE32) for _ in range(length))
        url = url[:426]
        expected = segno.make_qr(url, error="q", boost_error=False)
        if expected.version > 15:
            continue
        got = _qr.encode(url)
        assert (got.version, got.mask, got.matrix) == (
            expected.version,
            expected.mask,
            tuple(expected.matrix),
        )
        versions.add(got.version)
        masks.add(got.mask)
    assert len(versions) >= 10 and len(masks) >= 4

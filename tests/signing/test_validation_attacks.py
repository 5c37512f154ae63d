"""Attacks on signed PDFs, built in the test from documents signed in the test.

Each attacked file must never be reported TOTAL_PASSED, and must get the indication the
mapping in ``dangan.signing.validation`` promises. Attacks follow the classes of
Mladenov et al., "1 Trillion Dollar Refund" (incremental saving, universal signature
forgery, signature wrapping) and Mainka et al., "Shadow Attacks" (hide / replace).
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.generic import pdf_name
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.writer import PageObject, PdfFileWriter

from dangan.signing.validation import DocumentReport, Indication, PdfValidator, SubIndication
from tests.signing.pades_tools import (
    PAGE_HEIGHT,
    PAGE_WIDTH,
    byte_range,
    set_byte_range,
    sign,
    validation_report,
)

pytest_plugins = ["tests.signing.pades_fixtures"]

_FAILED, _FORMAT = Indication.TOTAL_FAILED, SubIndication.FORMAT_FAILURE


@pytest.fixture(scope="module")
def validator() -> Iterator[PdfValidator]:
    with PdfValidator(workers=2) as pool:
        yield pool


@pytest.fixture(scope="module")
def signed(signers, blank_pdf) -> bytes:
    """The blank page with one B-B approval signature."""
    return sign(blank_pdf, signer=signers["p256"], level="B-B")


@pytest.fixture
def check(validator, pki):
    def report(pdf: bytes) -> DocumentReport:
        result = validation_report(validator, pdf, roots=[pki.root], timeout_s=30)
        assert result.indication is not Indication.TOTAL_PASSED, result
        return result

    return report


def _verdict(report: DocumentReport) -> tuple[Indication, SubIndication | None]:
    return report.indication, report.sub_indication


def _update(pdf: bytes, change) -> bytes:
    """``pdf`` with one incremental update made by ``change(writer)``."""
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    change(writer)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _first_page(writer) -> generic.DictionaryObject:
    return writer.root["/Pages"]["/Kids"][0].get_object()


def _page_ref(writer) -> generic.IndirectObject:
    return writer.root["/Pages"].raw_get("/Kids")[0]


def _numbers(*values: float) -> generic.ArrayObject:
    return generic.ArrayObject(generic.FloatObject(v) for v in values)


def _stream(data: bytes) -> generic.StreamObject:
    return generic.StreamObject(stream_data=data)


_FORGED = b"1 1 1 rg 0 0 595 842 re f 0 g BT /F1 18 Tf 72 760 Td (PAY 1,000,000) Tj ET"


# --- 1. incremental saving: page content changed after signing ------------------------------


def test_replacing_the_page_content_stream_fails(check, signed) -> None:
    def replace(writer) -> None:
        page = _first_page(writer)
        page[pdf_name("/Contents")] = writer.add_object(_stream(_FORGED))
        writer.update_container(page)

    report = check(_update(signed, replace))
    assert _verdict(report) == (_FAILED, _FORMAT)
    assert report.signatures[0].modification_level == "OTHER"
    assert report.signatures[0].coverage == "entire revision"


def test_overwriting_the_content_stream_object_fails(check, signed) -> None:
    def overwrite(writer) -> None:
        ref = _first_page(writer).raw_get("/Contents")
        writer.mark_update(ref)  # the same object number, new data in the new section
        writer.objects[(ref.generation, ref.idnum)] = _stream(_FORGED)

    report = check(_update(signed, overwrite))
    assert _verdict(report) == (_FAILED, _FORMAT)


# --- 2. byte-range manipulation and signature wrapping ----------------------------------------


def test_a_byte_range_over_other_bytes_fails(check, signed) -> None:
    a, b, c, d = byte_range(signed)
    report = check(set_byte_range(signed, (a, b - 10, c, d)))
    assert _verdict(report) == (_FAILED, _FORMAT)


def test_a_byte_range_short_of_the_end_fails(check, signed) -> None:
    a, b, c, d = byte_range(signed)
    report = check(set_byte_range(signed, (a, b, c, d - 100)))
    assert report.indication is _FAILED
    assert report.sub_indication in (SubIndication.HASH_FAILURE, _FORMAT)


def test_moving_the_signed_tail_elsewhere_fails(check, signed) -> None:
    """Signature wrapping: the second range points at a copy appended after new objects."""
    a, b, c, d = byte_range(signed)
    evil = b"\n% wrapped objects would go here\n" + b"7 0 obj\n(evil)\nendobj\n"
    attacked = set_byte_range(signed, (a, b, len(signed) + len(evil), d))
    attacked = attacked + evil + signed[c : c + d]
    report = check(attacked)
    assert _verdict(report) == (_FAILED, _FORMAT)


def test_redirecting_the_signature_dictionary_in_a_new_xref_section_fails(check, signed) -> None:
    """A second xref section redefines the signature dictionary (same object number)."""

    def redirect(writer) -> None:
        field = writer.root["/AcroForm"]["/Fields"][0].get_object()
        sig_ref = field.raw_get("/V")
        forged = generic.DictionaryObject(sig_ref.get_object())
        forged[pdf_name("/Reason")] = generic.TextStringObject("forged")
        writer.mark_update(sig_ref)
        writer.objects[(sig_ref.generation, sig_ref.idnum)] = forged

    report = check(_update(signed, redirect))
    assert _verdict(report) == (_FAILED, _FORMAT)


def test_pointing_the_field_at_a_copied_signature_dictionary_fails(check, signed) -> None:
    def repoint(writer) -> None:
        field = writer.root["/AcroForm"]["/Fields"][0].get_object()
        copy = generic.DictionaryObject(field["/V"])
        copy[pdf_name("/Name")] = generic.TextStringObject("Mallory")
        field[pdf_name("/V")] = writer.add_object(copy)
        writer.update_container(field)

    report = check(_update(signed, repoint))
    assert report.indication is _FAILED


# --- 3. universal signature forgery ------------------------------------------------------------


def _with_gap(signed: bytes, gap: bytes) -> bytes:
    _, b, c, _ = byte_range(signed)
    assert len(gap) == c - b
    return signed[:b] + gap + signed[c:]


def test_emptied_contents_fail(check, signed) -> None:
    _, b, c, _ = byte_range(signed)
    report = check(_with_gap(signed, b"<" + b"0" * (c - b - 2) + b">"))
    assert _verdict(report) == (_FAILED, _FORMAT)


def test_non_hex_contents_fail(check, signed) -> None:
    _, b, c, _ = byte_range(signed)
    gap = signed[b:c]
    report = check(_with_gap(signed, gap[:5] + b"G" + gap[6:]))
    assert _verdict(report) == (_FAILED, _FORMAT)


def test_odd_length_contents_fail(check, signed) -> None:
    _, b, c, _ = byte_range(signed)
    gap = signed[b:c]
    report = check(_with_gap(signed, gap[:-2] + b" >"))
    assert _verdict(report) == (_FAILED, _FORMAT)


def test_a_missing_byte_range_fails(check, signed) -> None:
    report = check(signed.replace(b"/ByteRange", b"/ByteRangX", 1))
    assert _verdict(report) == (_FAILED, _FORMAT)


@pytest.mark.parametrize(
    "shape",
    ["negative", "overlapping", "not from zero", "past the end", "gap moved", "zero length"],
)
def test_a_malformed_byte_range_fails(check, signed, shape) -> None:
    a, b, c, d = byte_range(signed)
    values = {
        "negative": (a, -1, c, d),
        "overlapping": (a, c + 10, c, d),
        "not from zero": (1, b - 1, c, d),
        "past the end": (a, b, c, d + 1000),
        "gap moved": (a, b + 2, c + 2, d - 2),
        "zero length": (0, 0, 0, 0),
    }[shape]
    report = check(set_byte_range(signed, values))
    assert report.indication is _FAILED
    assert report.sub_indication in (_FORMAT, SubIndication.HASH_FAILURE)


# --- 4. shadow attacks ------------------------------------------------------------------------


def _shadow_pdf() -> bytes:
    """A page whose payment line sits in a hidden optional content group, and an unused
    content stream planted in the file (Mainka et al., hide-and-replace)."""
    writer = PdfFileWriter()
    ocg = writer.add_object(
        generic.DictionaryObject(
            {pdf_name("/Type"): pdf_name("/OCG"), pdf_name("/Name"): generic.TextStringObject("x")}
        )
    )
    writer.root[pdf_name("/OCProperties")] = generic.DictionaryObject(
        {
            pdf_name("/OCGs"): generic.ArrayObject([ocg]),
            pdf_name("/D"): generic.DictionaryObject(
                {pdf_name("/OFF"): generic.ArrayObject([ocg])}
            ),
        }
    )
    font = generic.DictionaryObject(
        {
            pdf_name("/Type"): pdf_name("/Font"),
            pdf_name("/Subtype"): pdf_name("/Type1"),
            pdf_name("/BaseFont"): pdf_name("/Helvetica"),
        }
    )
    resources = generic.DictionaryObject(
        {
            pdf_name("/Font"): generic.DictionaryObject({pdf_name("/F1"): font}),
            pdf_name("/Properties"): generic.DictionaryObject({pdf_name("/oc1"): ocg}),
        }
    )
    content = b"BT /F1 18 Tf 72 760 Td (approved: 100) Tj ET /OC /oc1 BDC " + _FORGED + b" EMC"
    page = PageObject(
        contents=writer.add_object(_stream(content)),
        media_box=(0, 0, PAGE_WIDTH, PAGE_HEIGHT),
        resources=resources,
    )
    writer.insert_page(page)
    planted = writer.add_object(_stream(_FORGED))
    writer.root[pdf_name("/Planted")] = planted  # keeps the stream in the file
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


@pytest.fixture(scope="module")
def shadow_signed(signers) -> bytes:
    return sign(_shadow_pdf(), signer=signers["p256"], level="B-B")


def test_the_shadow_document_itself_passes(validator, pki, shadow_signed) -> None:
    assert validation_report(validator, shadow_signed, roots=[pki.root]).passed


def test_shadow_replace_by_swapping_the_content_reference_fails(check, shadow_signed) -> None:
    def swap(writer) -> None:
        page = _first_page(writer)
        page[pdf_name("/Contents")] = writer.root.raw_get("/Planted")
        writer.update_container(page)

    report = check(_update(shadow_signed, swap))
    assert _verdict(report) == (_FAILED, _FORMAT)


def test_shadow_hide_revealed_by_turning_the_layer_on_fails(check, shadow_signed) -> None:
    def reveal(writer) -> None:
        properties = writer.root["/OCProperties"]
        properties["/D"][pdf_name("/OFF")] = generic.ArrayObject()
        writer.update_root()

    report = check(_update(shadow_signed, reveal))
    assert _verdict(report) == (_FAILED, _FORMAT)


# --- 5. DocMDP: what a certification permits ---------------------------------------------------


def _annotation_over_content(writer) -> None:
    page = _first_page(writer)
    annotation = writer.add_object(
        generic.DictionaryObject(
            {
                pdf_name("/Type"): pdf_name("/Annot"),
                pdf_name("/Subtype"): pdf_name("/Square"),
                pdf_name("/Rect"): _numbers(60, 740, 400, 790),
                pdf_name("/IC"): _numbers(1, 1, 1),
                pdf_name("/P"): _page_ref(writer),
            }
        )
    )
    page[pdf_name("/Annots")] = generic.ArrayObject([annotation])
    writer.update_container(page)


def _text_field(writer, name: str, value: str) -> None:
    """A new text field on the first page (an AcroForm is created if needed)."""
    field = writer.add_object(
        generic.DictionaryObject(
            {
                pdf_name("/FT"): pdf_name("/Tx"),
                pdf_name("/T"): generic.TextStringObject(name),
                pdf_name("/V"): generic.TextStringObject(value),
                pdf_name("/Type"): pdf_name("/Annot"),
                pdf_name("/Subtype"): pdf_name("/Widget"),
                pdf_name("/Rect"): _numbers(72, 600, 300, 620),
                pdf_name("/P"): _page_ref(writer),
            }
        )
    )
    form = writer.root.get("/AcroForm")
    if form is None:
        form = generic.DictionaryObject({pdf_name("/Fields"): generic.ArrayObject()})
        writer.root[pdf_name("/AcroForm")] = form
    form["/Fields"].append(field)
    page = _first_page(writer)
    annots = page.get("/Annots", generic.ArrayObject())
    annots.append(field)
    page[pdf_name("/Annots")] = annots
    writer.update_container(page)
    writer.update_root()


@pytest.fixture(scope="module")
def form_pdf(blank_pdf) -> bytes:
    """The blank page with an empty text field, saved before any signature."""
    return _update(blank_pdf, lambda writer: _text_field(writer, "amount", ""))


def _fill(writer, value: str) -> None:
    field = writer.root["/AcroForm"]["/Fields"][0].get_object()
    field[pdf_name("/V")] = generic.TextStringObject(value)
    ap = writer.add_object(
        generic.StreamObject(
            {
                pdf_name("/Type"): pdf_name("/XObject"),
                pdf_name("/Subtype"): pdf_name("/Form"),
                pdf_name("/BBox"): _numbers(0, 0, 228, 20),
            },
            stream_data=b"BT /Helv 12 Tf 2 5 Td (" + value.encode() + b") Tj ET",
        )
    )
    field[pdf_name("/AP")] = generic.DictionaryObject({pdf_name("/N"): ap})
    writer.update_container(field)


@pytest.fixture(scope="module")
def certified(signers, form_pdf) -> dict[str, bytes]:
    return {
        permission: sign(
            form_pdf, signer=signers["p256"], level="B-B", certify=True, docmdp=permission
        )
        for permission in ("no_changes", "fill_forms")
    }


def test_the_certified_documents_pass(validator, pki, certified) -> None:
    for pdf in certified.values():
        assert validation_report(validator, pdf, roots=[pki.root]).passed


def test_an_annotation_after_no_changes_certification_fails(check, certified) -> None:
    report = check(_update(certified["no_changes"], _annotation_over_content))
    assert _verdict(report) == (_FAILED, _FORMAT)
    assert report.signatures[0].docmdp == "no_changes"


def test_a_new_form_field_after_no_changes_certification_fails(check, certified) -> None:
    report = check(_update(certified["no_changes"], lambda w: _text_field(w, "extra", "9")))
    assert _verdict(report) == (_FAILED, _FORMAT)


def test_filling_a_field_after_no_changes_certification_fails(check, certified) -> None:
    report = check(_update(certified["no_changes"], lambda w: _fill(w, "1000")))
    assert _verdict(report) == (_FAILED, _FORMAT)


def test_filling_a_field_after_fill_forms_certification_passes(validator, pki, certified) -> None:
    filled = _update(certified["fill_forms"], lambda w: _fill(w, "1000"))
    report = validation_report(validator, filled, roots=[pki.root])
    assert report.passed, report
    assert report.signatures[0].modification_level == "FORM_FILLING"


def test_an_annotation_after_fill_forms_certification_fails(check, certified) -> None:
    """P=2 permits form filling, not annotations. (pyHanko's default diff policy flags any
    non-widget annotation as an unexplained change, so it fails even more strictly.)"""
    report = check(_update(certified["fill_forms"], _annotation_over_content))
    assert _verdict(report) == (_FAILED, _FORMAT)

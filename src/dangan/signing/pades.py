"""PAdES signatures (ETSI EN 319 142-1) on PDFs, always added as an incremental update.

:func:`sign_pdf` never rewrites the bytes it is given (ISO 32000-2 §7.5.6): the signed
PDF starts with the input, byte for byte, so earlier signatures stay valid and the
original version stays recoverable. It runs on pyHanko's asynchronous API, so it can be
awaited inside an event loop (FastAPI) without blocking it on network timestamping.

Levels (ETSI EN 319 142-1 §6; the DSS is its §5.4.2, the document timestamp §5.4.3):

    B-B     CMS signature (/SubFilter /ETSI.CAdES.detached) with signing-certificate-v2
    B-T     B-B plus a signature timestamp (unsigned attribute id-aa-timeStampToken)
    B-LT    B-T plus a DSS with the certificates and CRLs/OCSP responses to validate it
    B-LTA   B-LT plus a document timestamp covering the DSS

Errors, below :class:`~dangan.signing.errors.SigningError`:

    SigningError                    500 signing_error
    ├── UnsignablePdf               422 pdf_not_signable
    ├── InvalidAppearance           422 invalid_signature_appearance
    └── TimestampUnavailable        503 timestamp_unavailable
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal, get_args

from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.layout import BoxConstraints, LayoutError
from pyhanko.sign.fields import MDPPerm, SigFieldSpec, SigSeedSubFilter, enumerate_sig_fields
from pyhanko.sign.general import SigningError as PyHankoSigningError
from pyhanko.sign.signers.pdf_cms import Signer
from pyhanko.sign.signers.pdf_signer import PdfSignatureMetadata, PdfSigner, PdfSigningSession
from pyhanko.sign.timestamps import TimeStamper, TimestampRequestError
from pyhanko.stamp import BaseStampStyle
from pyhanko_certvalidator import ValidationContext

from dangan.signing._appearance import DEFAULT_CJK_FONT, AppearanceError, stamp_style
from dangan.signing._pdf_errors import PDF_STRUCTURE_ERRORS
from dangan.signing.keys import DIGEST_ALGORITHM, LoadedKeySigner
from dangan.signing._timestamper import InProcessTimeStamper, http_timestamper
from dangan.signing.errors import SigningError

__all__ = [
    "DEFAULT_CJK_FONT",
    "DocMdpPermission",
    "ExtraWidget",
    "InProcessTimeStamper",
    "InvalidAppearance",
    "LoadedKeySigner",
    "PadesLevel",
    "TimestampUnavailable",
    "UnsignablePdf",
    "http_timestamper",
    "sign_pdf",
]

#: PAdES baseline levels (ETSI EN 319 142-1 §6).
PadesLevel = Literal["B-B", "B-T", "B-LT", "B-LTA"]
#: DocMDP permissions /P of a certification signature (ISO 32000-2 §12.8.2.2.2).
DocMdpPermission = Literal["no_changes", "fill_forms", "annotate"]
#: A rectangle on the page in PDF points (1/72 inch): x1, y1 (lower left), x2, y2.
Box = tuple[float, float, float, float]



@dataclass(frozen=True)
class ExtraWidget:
    """One more visible widget of the same signature field, on another page.

    A cross-page seal (骑缝章) is one signature whose field has a widget annotation on
    every page (ISO 32000-2 §12.7.4: a field's /Kids may hold several widgets), each
    showing one slice of the seal image; all of them are in the signed revision.
    """

    page: int
    """0-based page index."""
    box: Box
    """Where the widget goes on that page, in PDF points."""
    png: bytes
    """Its appearance: a PNG, transparency kept."""


#: Bytes reserved beyond the dry-run CMS when the sizes are known (see _SigningSession).
_CMS_SIZE_MARGIN = 128
_MALFORMED = PDF_STRUCTURE_ERRORS
_DOCMDP = {
    "no_changes": MDPPerm.NO_CHANGES,
    "fill_forms": MDPPerm.FILL_FORMS,
    "annotate": MDPPerm.ANNOTATE,
}


class UnsignablePdf(SigningError):
    """The PDF cannot be read, is encrypted, or its signatures forbid another one."""

    code = "pdf_not_signable"
    title = "The PDF cannot be signed"
    status = 422


class InvalidAppearance(SigningError):
    """The visible appearance (page, box, stamp image or text) cannot be drawn."""

    code = "invalid_signature_appearance"
    title = "The signature appearance is invalid"
    status = 422


class TimestampUnavailable(SigningError):
    """The Time-Stamp Authority refused the request or could not be reached."""

    code = "timestamp_unavailable"
    title = "No timestamp could be obtained"
    status = 503


async def sign_pdf(
    pdf: bytes,
    *,
    signer: Signer,
    now: datetime,
    level: PadesLevel = "B-T",
    field_name: str | None = None,
    reason: str | None = None,
    location: str | None = None,
    page: int = 0,
    box: Box | None = None,
    appearance: bytes | None = None,
    text: str | None = None,
    certify: bool = False,
    docmdp: DocMdpPermission = "fill_forms",
    timestamper: TimeStamper | None = None,
    validation_context: ValidationContext | None = None,
    font_path: Path = DEFAULT_CJK_FONT,
    extra_widgets: Sequence[ExtraWidget] = (),
    changes: Callable[[IncrementalPdfFileWriter], None] | None = None,
) -> bytes:
    """``pdf`` with one more PAdES signature of ``level``, appended as an incremental update.

    ``now`` is the claimed signing time (/M, ISO 32000-2 §12.8.1); the timestamp's time
    comes from the TSA. ``field_name`` defaults to the first free ``Signature<n>``; an
    existing empty field of that name is filled. ``page`` is a 0-based index (negative
    counts from the end). With ``box`` the signature is visible: the PNG ``appearance``
    (transparency kept) and/or ``text`` (set in ``font_path``, which covers Chinese) fill
    the box, by default the signer's name and the signing time; without ``box`` it is
    invisible. ``certify`` makes a certification signature (ISO 32000-2 §12.8.2.2) with
    ``docmdp`` permissions, only as the document's first signature; ``docmdp`` is
    ignored otherwise. ``extra_widgets`` give the same (new, visible) signature field
    more widgets on other pages, e.g. the slices of a cross-page seal. ``changes``, when
    given, edits the document in the same incremental update as the signature, which
    then covers them (e.g. a licence's QR code drawn on its page).

    B-T and above need ``timestamper`` (keep one and reuse it: it caches per instance).
    B-LT and B-LTA need ``validation_context``, whose certificates, CRLs and OCSP
    responses go into the DSS; with ``allow_fetching=False`` only what it holds is used.
    For B-B and B-T a ``validation_context``, when given, vets the signer's certificate
    before signing. A context that fetches keeps an HTTP session the caller must close.

    Raises :class:`UnsignablePdf`, :class:`InvalidAppearance`,
    :class:`TimestampUnavailable` or :class:`SigningError`; ``ValueError`` for options
    the service (not the client) got wrong.
    """
    _check_options(
        level, docmdp=docmdp, now=now, timestamper=timestamper, context=validation_context
    )
    writer = _open(pdf, certify=certify)
    if changes is not None:
        changes(writer)
    field_name, field_spec = _field(
        writer, field_name, page=page, box=box, split=bool(extra_widgets)
    )
    widgets = _extra_widgets(writer, extra_widgets, field_spec, font_path=font_path)
    if box is not None and appearance is None and not text:
        text = _default_text(signer, now)
    pdf_signer = _DatedPdfSigner(
        PdfSignatureMetadata(
            field_name=field_name,
            md_algorithm=DIGEST_ALGORITHM,
            reason=reason,
            location=location,
            certify=certify,
            docmdp_permissions=_DOCMDP[docmdp],
            subfilter=SigSeedSubFilter.PADES,
            embed_validation_info=level in ("B-LT", "B-LTA"),
            use_pades_lta=level == "B-LTA",
            validation_context=validation_context,
        ),
        signer,
        now=now,
        timestamper=timestamper if level != "B-B" else None,
        stamp_style=_appearance(box, appearance=appearance, text=text, font_path=font_path),
        new_field_spec=field_spec,
        extra_widgets=widgets,
    )
    signed = await _run(pdf_signer, writer)
    if not signed.startswith(pdf):  # DESIGN.md invariant 1; pyHanko only ever appends
        raise SigningError("the signed PDF does not start with the original bytes")
    return signed


class _DatedPdfSigner(PdfSigner):
    """A PdfSigner whose signing time is a parameter instead of the machine's clock."""

    def __init__(
        self,
        *args: object,
        now: datetime,
        extra_widgets: Sequence[tuple[int, Box, BaseStampStyle]] = (),
        **kwargs: object,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._now = now
        self._extra_widgets = extra_widgets

    def init_signing_session(
        self, pdf_out: IncrementalPdfFileWriter, existing_fields_only: bool = False
    ) -> PdfSigningSession:
        session = super().init_signing_session(pdf_out, existing_fields_only=existing_fields_only)
        return _SigningSession(
            self,
            session.pdf_out,
            session.cms_writer,
            session.sig_field,
            session.md_algorithm,
            session.timestamper,
            session.subfilter,
            system_time=self._now,
            sv_spec=session.sv_spec,
            extra_widgets=self._extra_widgets,
        )


class _SigningSession(PdfSigningSession):
    """Reserves room for the CMS as its dry run measured it, plus a small margin.

    pyHanko adds 50% to cover timestamp tokens of unknown size. Our signer's dry run is
    as long as its longest signature, and tokens of dangan's TSA vary by a few bytes
    (serial number, fraction of genTime); a tighter /Contents is faster for every
    validator to read. Other TSAs keep pyHanko's margin. At B-B and B-T the size is
    measured once per signer and timestamper (see below).

    It also adds the field's extra widgets once pyHanko has drawn the first one.
    """

    def __init__(
        self,
        *args: object,
        extra_widgets: Sequence[tuple[int, Box, BaseStampStyle]] = (),
        **kwargs: object,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._extra_widgets = extra_widgets

    def prepare_tbs_document(
        self, validation_info: object, bytes_reserved: int, appearance_text_params: object = None
    ) -> object:
        # pyHanko draws the appearance of a field with exactly one widget; the document
        # then waits, unwritten, to be digested: the other widgets join it here.
        tbs = super().prepare_tbs_document(validation_info, bytes_reserved, appearance_text_params)
        for page, box, style in self._extra_widgets:
            _add_widget(self.pdf_out, self.sig_field, page=page, box=box, style=style)
        return tbs

    async def estimate_signature_container_size(
        self, validation_info: object, tight: bool = False
    ) -> int:
        if self.timestamper is not None and not isinstance(self.timestamper, InProcessTimeStamper):
            return await super().estimate_signature_container_size(validation_info, tight=tight)
        if validation_info is not None:  # B-LT and up: what is embedded may vary
            estimate = await super().estimate_signature_container_size(validation_info, tight=True)
            return estimate + 2 * _CMS_SIZE_MARGIN
        # The estimate is a whole dry-run CMS (about as costly as the real one) whose size
        # depends only on the signer, the digest and the timestamper, never on the
        # document or its appearance: it is kept on the signer, per timestamper.
        signer = self.pdf_signer.signer
        estimates = signer.__dict__.setdefault("_dangan_cms_size", {})
        key = (id(self.timestamper), self.md_algorithm, self.subfilter)
        if key not in estimates:
            estimate = await super().estimate_signature_container_size(None, tight=True)
            estimates[key] = estimate + 2 * _CMS_SIZE_MARGIN
        return estimates[key]


def _check_options(
    level: str,
    *,
    docmdp: str,
    now: datetime,
    timestamper: TimeStamper | None,
    context: ValidationContext | None,
) -> None:
    """Programming errors: the service configures these, not the client."""
    if level not in get_args(PadesLevel):
        raise ValueError(f"unknown PAdES level {level!r}")
    if docmdp not in _DOCMDP:
        raise ValueError(f"unknown DocMDP permission {docmdp!r}")
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if level != "B-B" and timestamper is None:
        raise ValueError(f"PAdES {level} needs a timestamper")
    if level in ("B-LT", "B-LTA") and context is None:
        raise ValueError(f"PAdES {level} needs a validation context for the DSS")


def _open(pdf: bytes, *, certify: bool) -> IncrementalPdfFileWriter:
    """A writer appending to ``pdf``, after checking that one more signature is allowed."""
    try:
        writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
        if writer.prev.encrypted:
            raise UnsignablePdf("encrypted PDFs are not signed")
        signatures = writer.prev.embedded_regular_signatures
        levels = [s.docmdp_level for s in signatures]
    except _MALFORMED as exc:
        raise UnsignablePdf("the PDF cannot be parsed") from exc
    if certify and signatures:
        # ISO 32000-2 §12.8.2.2.1: a certification signature comes first.
        raise UnsignablePdf("a certification signature must be the document's first signature")
    if MDPPerm.NO_CHANGES in levels:
        # ISO 32000-2 §12.8.2.2.2 /P 1: no changes at all, another signature included.
        raise UnsignablePdf("a certification signature of the PDF forbids any change")
    return writer


def _field(
    writer: IncrementalPdfFileWriter,
    name: str | None,
    *,
    page: int,
    box: Box | None,
    split: bool = False,
) -> tuple[str, SigFieldSpec | None]:
    """The field name, and the spec of a new field (None when an empty one is reused)."""
    try:
        existing = {field_name: value for field_name, value, _ref in enumerate_sig_fields(writer)}
        certified = "/DocMDP" in writer.root.get("/Perms", {})
        page_count = int(writer.root["/Pages"]["/Count"])
    except _MALFORMED as exc:
        raise UnsignablePdf("the PDF's form fields or pages cannot be read") from exc
    name = name if name is not None else _free_name(existing)
    if name in existing:
        if existing[name] is not None:
            raise UnsignablePdf(f"the signature field {name!r} is already signed")
        if split:
            raise InvalidAppearance("widgets on several pages need a new signature field")
        return name, None
    if box is not None and certified:
        # A certified document (/Perms /DocMDP, ISO 32000-2 §12.8.4) may be signed
        # under /P 2 or 3, but validators (pyHanko's diff policy among them) treat a new
        # visible field as a change the certification did not permit. Empty fields made
        # before the certification can still be filled.
        raise UnsignablePdf("a certified PDF takes new signatures only invisible")
    if box is not None and not (box[0] < box[2] and box[1] < box[3]):
        raise InvalidAppearance("the box needs x1 < x2 and y1 < y2")
    if not -page_count <= page < page_count:
        raise InvalidAppearance(f"the PDF has no page {page} (it has {page_count})")
    if split and box is None:
        raise InvalidAppearance("widgets on several pages need a visible first widget")
    # Split (ISO 32000-2 §12.7.4): a field dictionary with its widgets in /Kids.
    return name, SigFieldSpec(
        sig_field_name=name, on_page=page, box=box, combine_annotation=not split
    )


def _extra_widgets(
    writer: IncrementalPdfFileWriter,
    widgets: Sequence[ExtraWidget],
    spec: SigFieldSpec | None,
    *,
    font_path: Path,
) -> list[tuple[int, Box, BaseStampStyle]]:
    """Each extra widget's page, box and stamp style, checked before anything is written."""
    page_count = int(writer.root["/Pages"]["/Count"]) if widgets else 0
    styled = []
    for widget in widgets:
        if not 0 <= widget.page < page_count:
            raise InvalidAppearance(f"the PDF has no page {widget.page} (it has {page_count})")
        x1, y1, x2, y2 = widget.box
        if not (x1 < x2 and y1 < y2):
            raise InvalidAppearance("the box needs x1 < x2 and y1 < y2")
        style = _appearance(widget.box, appearance=widget.png, text=None, font_path=font_path)
        assert style is not None
        styled.append((widget.page, widget.box, style))
    if styled and spec is not None and spec.on_page in {page for page, _, _ in styled}:
        raise InvalidAppearance("one signature field shows at most one widget per page")
    return styled


def _add_widget(
    writer: IncrementalPdfFileWriter,
    field: generic.DictionaryObject,
    *,
    page: int,
    box: Box,
    style: BaseStampStyle,
) -> None:
    """A widget annotation of ``field`` on ``page`` (ISO 32000-2 §12.5.6.19), drawn by
    ``style``, flagged Print and Locked (§12.5.3) so viewers neither hide nor move it.

    The widgets carry no /Parent (Table 166 asks for one when a field has several):
    poppler (22.12) then takes each widget for a field of its own and reports the
    signature as unsigned, while every reader finds them through the field's /Kids.
    """
    page_ref = writer.find_page_for_modification(page)[0]
    kids = field["/Kids"]
    widget = generic.DictionaryObject(
        {
            generic.pdf_name("/Type"): generic.pdf_name("/Annot"),
            generic.pdf_name("/Subtype"): generic.pdf_name("/Widget"),
            generic.pdf_name("/Rect"): generic.ArrayObject(generic.FloatObject(v) for v in box),
            generic.pdf_name("/F"): generic.NumberObject(4 | 128),
            generic.pdf_name("/P"): page_ref,
        }
    )
    width, height = box[2] - box[0], box[3] - box[1]
    stamp = style.create_stamp(writer, BoxConstraints(width=width, height=height), {})
    stamp.apply_appearance(widget)
    widget_ref = writer.add_object(widget)
    kids.append(widget_ref)
    writer.update_container(kids)
    writer.update_container(field)
    writer.register_annotation(page_ref, widget_ref)


def _free_name(existing: dict[str, object]) -> str:
    number = 1
    while f"Signature{number}" in existing:
        number += 1
    return f"Signature{number}"


def _appearance(
    box: Box | None, *, appearance: bytes | None, text: str | None, font_path: Path
) -> BaseStampStyle | None:
    """The stamp style for a visible signature, or None for pyHanko's default."""
    if appearance is None and not text:
        return None
    if box is None:
        raise InvalidAppearance("an appearance image or text needs a box to be drawn in")
    try:
        return stamp_style(
            image_png=appearance, text=text, box_height=box[3] - box[1], font_path=font_path
        )
    except AppearanceError as exc:
        raise InvalidAppearance(str(exc)) from exc


def _default_text(signer: Signer, now: datetime) -> str:
    return f"{signer.subject_name or ''}\n{now:%Y-%m-%d %H:%M:%S %z}".strip()


async def _run(pdf_signer: PdfSigner, writer: IncrementalPdfFileWriter) -> bytes:
    """Sign, with pyHanko's errors turned into dangan's at this boundary."""
    output = io.BytesIO()
    try:
        await pdf_signer.async_sign_pdf(writer, output=output)
    except TimestampRequestError as exc:
        raise TimestampUnavailable(str(exc)) from exc
    except PyHankoSigningError as exc:
        raise SigningError(f"pyHanko refused to sign: {exc}") from exc
    except LayoutError as exc:
        raise InvalidAppearance(f"the appearance does not fit: {exc}") from exc
    except _MALFORMED as exc:
        raise UnsignablePdf(f"the PDF cannot be updated ({type(exc).__name__})") from exc
    return output.getvalue()

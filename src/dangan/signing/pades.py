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
from datetime import datetime
from pathlib import Path
from typing import Literal, get_args

from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.layout import LayoutError
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
    ignored otherwise.

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
    field_name, field_spec = _field(writer, field_name, page=page, box=box)
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
    )
    signed = await _run(pdf_signer, writer)
    if not signed.startswith(pdf):  # DESIGN.md invariant 1; pyHanko only ever appends
        raise SigningError("the signed PDF does not start with the original bytes")
    return signed


class _DatedPdfSigner(PdfSigner):
    """A PdfSigner whose signing time is a parameter instead of the machine's clock."""

    def __init__(self, *args: object, now: datetime, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self._now = now

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
        )


class _SigningSession(PdfSigningSession):
    """Reserves room for the CMS as its dry run measured it, plus a small margin.

    pyHanko adds 50% to cover timestamp tokens of unknown size. Our signer's dry run is
    as long as its longest signature, and tokens of dangan's TSA vary by a few bytes
    (serial number, fraction of genTime); a tighter /Contents is faster for every
    validator to read. Other TSAs keep pyHanko's margin.
    """

    async def estimate_signature_container_size(
        self, validation_info: object, tight: bool = False
    ) -> int:
        if self.timestamper is not None and not isinstance(self.timestamper, InProcessTimeStamper):
            return await super().estimate_signature_container_size(validation_info, tight=tight)
        estimate = await super().estimate_signature_container_size(validation_info, tight=True)
        return estimate + 2 * _CMS_SIZE_MARGIN


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
    writer: IncrementalPdfFileWriter, name: str | None, *, page: int, box: Box | None
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
    return name, SigFieldSpec(sig_field_name=name, on_page=page, box=box)


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

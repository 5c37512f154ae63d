"""Helpers for the PAdES tests: test PDFs and images, and the external tools that check them.

Signatures are taken apart here without pyHanko (the /ByteRange gap holds /Contents), so
that openssl sees exactly what any other verifier would.
"""

from __future__ import annotations

import asyncio
import io
import re
import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from asn1crypto import cms
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from PIL import Image, ImageDraw
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.pdf_utils.writer import PageObject, PdfFileWriter
from pyhanko.sign.validation import async_validate_pdf_signature
from pyhanko.sign.validation.status import PdfSignatureStatus
from pyhanko_certvalidator import ValidationContext

from dangan.signing.pades import PadesLevel, sign_pdf

PDFSIG = shutil.which("pdfsig")
PDFTOPPM = shutil.which("pdftoppm")
PDFFONTS = shutil.which("pdffonts")
CERTUTIL = shutil.which("certutil")

#: A4 in points.
PAGE_WIDTH, PAGE_HEIGHT = 595, 842
#: The page background of :func:`one_page_pdf`: light grey, so white and transparency differ.
PAGE_GREY = 0.9
POLICY = "1.3.6.1.4.1.57264.1.1"
LEVELS: list[PadesLevel] = ["B-B", "B-T", "B-LT", "B-LTA"]
KEY_TYPES = ["rsa2048", "p256"]
needs_pdfsig = pytest.mark.skipif(PDFSIG is None, reason="needs poppler's pdfsig")
_BYTE_RANGE = re.compile(rb"/ByteRange\s*\[\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*\]")


def asn1(certificate: x509.Certificate) -> asn1_x509.Certificate:
    """``certificate`` as asn1crypto (and so pyHanko) wants it."""
    return asn1_x509.Certificate.load(certificate.public_bytes(serialization.Encoding.DER))


def run(*args: str | Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run a command; stdout and stderr come back as text, the exit status unchecked."""
    return subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, check=False, timeout=timeout
    )


def one_page_pdf(*, filler_bytes: int = 0, password: str | None = None) -> bytes:
    """An A4 page painted light grey with a line of text.

    ``filler_bytes`` pads the content stream; ``password`` encrypts the PDF (AES-256).
    """
    content = b"%g g 0 0 %d %d re f 0 g BT /F1 18 Tf 72 760 Td (dangan test page) Tj ET" % (
        PAGE_GREY,
        PAGE_WIDTH,
        PAGE_HEIGHT,
    )
    # A comment line per 64 bytes keeps the filler inert, and it must not compress away.
    filler = bytes(range(33, 97)) * (filler_bytes // 64)
    content += b"".join(b"\n% " + filler[i : i + 61] for i in range(0, len(filler), 64))
    writer = PdfFileWriter()
    font = generic.DictionaryObject(
        {
            generic.pdf_name("/Type"): generic.pdf_name("/Font"),
            generic.pdf_name("/Subtype"): generic.pdf_name("/Type1"),
            generic.pdf_name("/BaseFont"): generic.pdf_name("/Helvetica"),
        }
    )
    resources = generic.DictionaryObject(
        {generic.pdf_name("/Font"): generic.DictionaryObject({generic.pdf_name("/F1"): font})}
    )
    stream = generic.StreamObject(stream_data=content)
    page = PageObject(
        contents=writer.add_object(stream),
        media_box=(0, 0, PAGE_WIDTH, PAGE_HEIGHT),
        resources=resources,
    )
    writer.insert_page(page)
    if password is not None:
        writer.encrypt(password, password)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def seal_png(size: int = 240) -> bytes:
    """A red ring on a fully transparent background, like a scanned organisation seal."""
    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.ellipse((8, 8, size - 8, size - 8), outline=(210, 20, 20, 255), width=size // 12)
    draw.regular_polygon((size / 2, size / 2, size / 6), 5, fill=(210, 20, 20, 255))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


@dataclass(frozen=True)
class ExtractedSignature:
    """One signature of a PDF, cut out along its /ByteRange."""

    signed_bytes: bytes
    """The two byte ranges the signature covers, concatenated."""
    cms_der: bytes
    """The CMS ContentInfo from /Contents, without the zero padding."""
    covers_whole_file: bool
    """Whether the second range ends at the end of the file."""

    @property
    def signed_data(self) -> cms.SignedData:
        return cms.ContentInfo.load(self.cms_der)["content"]

    def timestamp_token(self) -> bytes | None:
        """The DER signature-timestamp token (id-aa-timeStampToken), if there is one."""
        signer_info = self.signed_data["signer_infos"][0]
        for attribute in signer_info["unsigned_attrs"] or []:
            if attribute["type"].native == "signature_time_stamp_token":
                return attribute["values"][0].dump()
        return None

    def signature_value(self) -> bytes:
        return self.signed_data["signer_infos"][0]["signature"].native


def extract_signatures(pdf: bytes) -> list[ExtractedSignature]:
    """Every signature and document timestamp in ``pdf``, in file order."""
    found = []
    for match in _BYTE_RANGE.finditer(pdf):
        a, b, c, d = (int(x) for x in match.groups())
        contents = pdf[a + b : c].strip()
        assert contents[:1] == b"<" and contents[-1:] == b">", "the gap is not /Contents"
        raw = bytes.fromhex(contents[1:-1].decode("ascii"))
        der = cms.ContentInfo.load(raw, strict=False).dump()
        found.append(
            ExtractedSignature(
                signed_bytes=pdf[a : a + b] + pdf[c : c + d],
                cms_der=der,
                covers_whole_file=c + d == len(pdf),
            )
        )
    return found


def openssl_cms_verify(signature: ExtractedSignature, work: Path, root_pem: Path) -> str:
    """``openssl cms -verify`` of the detached signature; its stderr (the verdict)."""
    (work / "content.bin").write_bytes(signature.signed_bytes)
    (work / "signature.der").write_bytes(signature.cms_der)
    result = run(
        "openssl",
        "cms",
        "-verify",
        "-inform",
        "DER",
        "-in",
        work / "signature.der",
        "-binary",
        "-content",
        work / "content.bin",
        "-CAfile",
        root_pem,
        "-purpose",
        "any",
        "-out",
        work / "verified.bin",
    )
    return result.stdout + result.stderr


def openssl_ts_verify(
    signature: ExtractedSignature, work: Path, root_pem: Path, untrusted_pem: Path
) -> str:
    """``openssl ts -verify`` of the signature timestamp over the signature value."""
    token = signature.timestamp_token()
    assert token is not None, "the signature has no timestamp token"
    (work / "token.der").write_bytes(token)
    (work / "signature-value.bin").write_bytes(signature.signature_value())
    result = run(
        "openssl",
        "ts",
        "-verify",
        "-in",
        work / "token.der",
        "-token_in",
        "-data",
        work / "signature-value.bin",
        "-CAfile",
        root_pem,
        "-untrusted",
        untrusted_pem,
    )
    return result.stdout + result.stderr


def nss_database(directory: Path, root_pem: Path) -> Path | None:
    """An NSS database trusting ``root_pem`` for pdfsig, or None without certutil."""
    if CERTUTIL is None:
        return None
    directory.mkdir(parents=True, exist_ok=True)
    for args in (
        ["-N", "--empty-password", "-d", f"sql:{directory}"],
        ["-A", "-d", f"sql:{directory}", "-n", "dangan-dev-root", "-t", "CT,C,C", "-i", root_pem],
    ):
        result = run(CERTUTIL, *args)
        assert result.returncode == 0, result.stderr
    return directory


def pdfsig(pdf_path: Path, nss_dir: Path | None) -> list[str]:
    """pdfsig's report, one block of lines per signature.

    With ``nss_dir`` pdfsig also checks the certificate against that database. Not with
    ``-no-ocsp``: poppler 22.12 then reads a stale NSS error code and reports "Unknown
    issue with Certificate" for a valid chain. The dev certificates name no OCSP
    responder, so nothing is fetched either way.
    """
    args: list[str | Path] = [PDFSIG or "pdfsig"]
    args += ["-nssdir", f"sql:{nss_dir}"] if nss_dir is not None else ["-nocert"]
    result = run(*args, pdf_path)
    assert result.returncode == 0, result.stdout + result.stderr
    return re.split(r"^Signature #\d+:$", result.stdout, flags=re.MULTILINE)[1:]


def render_page(pdf_path: Path, out_stem: Path) -> Image.Image:
    """The first page rendered by poppler at 72 dpi (one pixel per point)."""
    result = run(
        PDFTOPPM or "pdftoppm",
        "-png",
        "-r",
        "72",
        "-f",
        "1",
        "-l",
        "1",
        "-singlefile",
        pdf_path,
        out_stem,
    )
    assert result.returncode == 0, result.stderr
    return Image.open(out_stem.with_suffix(".png")).convert("RGB")


def sign(pdf: bytes, **options: object) -> bytes:
    """``sign_pdf`` run to completion; the result must start with ``pdf``."""
    options.setdefault("now", datetime.now(UTC))
    signed = asyncio.run(sign_pdf(pdf, **options))
    assert signed.startswith(pdf), "not an incremental update"
    return signed


def statuses(pdf: bytes, context: ValidationContext) -> list[PdfSignatureStatus]:
    """pyHanko's status of every approval/certification signature, in signing order."""
    reader = PdfFileReader(io.BytesIO(pdf))

    async def validate() -> list[PdfSignatureStatus]:
        return [
            await async_validate_pdf_signature(s, signer_validation_context=context)
            for s in reader.embedded_regular_signatures
        ]

    return asyncio.run(validate())


def nss_dir(work: Path) -> Path | None:
    """The NSS database of ``work``, if certutil could make one."""
    return work / "nss" if (work / "nss").exists() else None


# --- signature validation (dangan.signing.validation) ------------------------------------


def validation_report(validator, pdf: bytes, *, roots, crls=(), **options):
    """``validator.validate`` (a PdfValidator) run to completion at the current time."""
    return asyncio.run(
        validator.validate(pdf, trust_roots=roots, now=datetime.now(UTC), crls=crls, **options)
    )


def set_byte_range(pdf: bytes, values: tuple[int, int, int, int], *, which: int = 0) -> bytes:
    """``pdf`` with the ``which``-th /ByteRange array rewritten in place (same width)."""
    match = list(re.finditer(rb"/ByteRange\s*\[[^\]]*\]", pdf))[which]
    text = b"/ByteRange [%d %d %d %d]" % values
    width = match.end() - match.start()
    assert len(text) <= width, "the new /ByteRange does not fit"
    text = text[:-1] + b" " * (width - len(text)) + b"]"
    return pdf[: match.start()] + text + pdf[match.end() :]


def byte_range(pdf: bytes, *, which: int = 0) -> tuple[int, int, int, int]:
    """The ``which``-th /ByteRange of ``pdf``."""
    match = list(_BYTE_RANGE.finditer(pdf))[which]
    a, b, c, d = (int(x) for x in match.groups())
    return a, b, c, d


def level_options(level: str, timestamper, make_context) -> dict[str, object]:
    """The ``sign_pdf`` keywords a PAdES level needs: a timestamper from B-T, a
    validation context for B-LT and B-LTA."""
    options: dict[str, object] = {"level": level}
    if level != "B-B":
        options["timestamper"] = timestamper
    if level in ("B-LT", "B-LTA"):
        options["validation_context"] = make_context()
    return options

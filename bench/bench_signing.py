"""Signing: PAdES B-T on a one-page ~50 KB PDF with RSA-2048, and validating the result.

(a) N documents (default 100), each signed at PAdES B-T through pyHanko's async API.
    Baseline: stock pyHanko, ``SimpleSigner.load`` from PEM files (it parses the key again
    for every signature, twice per document) and ``DummyTimeStamper`` (it parses the TSA
    key for every token). Ours: ``sign_pdf`` with ``LoadedKeySigner`` (key parsed once)
    and ``InProcessTimeStamper`` (dangan's RFC 3161 TSA, in process). Both sign the same
    bytes with the same certificates; they take turns in slices so that drift hits both.
    Target: ours >= 4x faster (ratio of median latencies).
(b) Validation of a one-signature document signed by (a)'s engine, as the service does
    it: one long-lived ``PdfValidator`` (warm worker pool; the PDF is parsed only in a
    worker process with memory/CPU limits and a deadline), the dev root as the only
    trust root and the issuing CA's CRL (DER) as ``SigningServices.current_crl`` gives
    it; the full ETSI report must come out TOTAL_PASSED at B-T. Baseline, in turn with
    it: stock pyHanko in process (``PdfFileReader``, a fresh ``ValidationContext`` with
    the same root and CRL, ``async_validate_pdf_signature``). Target: median <= 15 ms.

``--quick`` shrinks the sizes for a smoke run.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from asn1crypto import crl as asn1_crl
from asn1crypto import keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.pdf_utils.writer import PageObject, PdfFileWriter
from pyhanko.sign import signers
from pyhanko.sign.fields import SigSeedSubFilter
from pyhanko.sign.timestamps import DummyTimeStamper
from pyhanko.sign.validation import async_validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from dangan.clock import system_clock
from dangan.signing.pades import InProcessTimeStamper, LoadedKeySigner, sign_pdf
from dangan.signing.pki import DevPki, IssuedCredential
from dangan.signing.tsa import TimestampAuthority
from dangan.signing.validation import PdfValidator

PASSPHRASE = b"bench passphrase"
POLICY = "1.3.6.1.4.1.57264.1.1"
RATIO_TARGET = 4.0
VALIDATION_TARGET_S = 0.015
SignOne = Callable[[bytes], Awaitable[bytes]]
ValidateOne = Callable[[], Awaitable[None]]


def make_pdf(size: int) -> bytes:
    """A one-page PDF of about ``size`` bytes: a line of text and inert comment filler."""
    content = b"BT /F1 18 Tf 72 760 Td (dangan signing benchmark) Tj ET"
    line = bytes(range(40, 100))
    while len(content) < size - 1200:
        content += b"\n% " + line
    font = generic.DictionaryObject(
        {
            generic.pdf_name("/Type"): generic.pdf_name("/Font"),
            generic.pdf_name("/Subtype"): generic.pdf_name("/Type1"),
            generic.pdf_name("/BaseFont"): generic.pdf_name("/Helvetica"),
        }
    )
    writer = PdfFileWriter()
    page = PageObject(
        contents=writer.add_object(generic.StreamObject(stream_data=content)),
        media_box=(0, 0, 595, 842),
        resources=generic.DictionaryObject(
            {generic.pdf_name("/Font"): generic.DictionaryObject({generic.pdf_name("/F1"): font})}
        ),
    )
    writer.insert_page(page)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def asn1(certificate: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(certificate.public_bytes(serialization.Encoding.DER))


def stock_signer(pki: DevPki, credential: IssuedCredential) -> tuple[SignOne, str]:
    """Stock pyHanko: SimpleSigner.load from the PKI's PEM files, DummyTimeStamper."""
    stem = credential.pkcs12_path.with_suffix("")
    signer = signers.SimpleSigner.load(
        str(stem.with_suffix(".key.pem")),
        str(stem.with_suffix(".pem")),
        ca_chain_files=(str(pki.directory / "chain.pem"),),
        key_passphrase=PASSPHRASE,
    )
    tsa_key = pki.tsa.private_key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    timestamper = DummyTimeStamper(
        tsa_cert=asn1(pki.tsa.certificate),
        tsa_key=keys.PrivateKeyInfo.load(tsa_key),
        certs_to_embed=[asn1(c) for c in pki.chain],
    )
    metadata = signers.PdfSignatureMetadata(
        field_name="Signature1", md_algorithm="sha256", subfilter=SigSeedSubFilter.PADES
    )

    async def sign(pdf: bytes) -> bytes:
        output = io.BytesIO()
        writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
        await signers.async_sign_pdf(
            writer, metadata, signer=signer, timestamper=timestamper, output=output
        )
        return output.getvalue()

    return sign, "stock pyHanko (SimpleSigner.load + DummyTimeStamper)"


def our_signer(pki: DevPki, credential: IssuedCredential) -> tuple[SignOne, str]:
    """dangan: the key loaded once, timestamps from the in-process TSA."""
    signer = LoadedKeySigner.from_pkcs12(credential.pkcs12_path, PASSPHRASE)
    authority = TimestampAuthority.from_credential(
        pki.tsa, policy_oid=POLICY, accuracy_ms=1000, clock=system_clock
    )
    timestamper = InProcessTimeStamper(authority)

    async def sign(pdf: bytes) -> bytes:
        return await sign_pdf(
            pdf, signer=signer, level="B-T", timestamper=timestamper, now=system_clock()
        )

    return sign, "dangan sign_pdf (LoadedKeySigner + InProcessTimeStamper)"


async def timed_batch(sign: SignOne, pdf: bytes, count: int, times: list[float]) -> bytes:
    """Sign ``pdf`` ``count`` times, appending each latency; the last result is returned."""
    signed = b""
    for _ in range(count):
        started = time.perf_counter()
        signed = await sign(pdf)
        times.append(time.perf_counter() - started)
        assert signed.startswith(pdf), "not an incremental update"
    return signed


def stock_validation(pdf: bytes, root: x509.Certificate, crl: bytes) -> ValidateOne:
    """Stock pyHanko in process: read, a fresh ValidationContext, validate the signature."""
    trust_root, revocation = asn1(root), asn1_crl.CertificateList.load(crl)

    async def validate() -> None:
        signature = PdfFileReader(io.BytesIO(pdf)).embedded_signatures[0]
        context = ValidationContext(
            trust_roots=[trust_root], crls=[revocation], allow_fetching=False
        )
        status = await async_validate_pdf_signature(signature, signer_validation_context=context)
        assert status.bottom_line and status.timestamp_validity is not None, status.summary()

    return validate


def our_validation(
    validator: PdfValidator, pdf: bytes, root: x509.Certificate, crl: bytes
) -> ValidateOne:
    """dangan's product path: the warm worker pool, the full ETSI report."""

    async def validate() -> None:
        report = await validator.validate(
            pdf, trust_roots=[root], crls=[crl], now=system_clock()
        )
        assert report.passed, report.detail
        (signature,) = report.signatures
        assert signature.pades_level == "B-T" and signature.trusted, signature

    return validate


async def timed(validate: ValidateOne, count: int, times: list[float]) -> None:
    for _ in range(count):
        started = time.perf_counter()
        await validate()
        times.append(time.perf_counter() - started)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


async def bench_signing(
    pki: DevPki, credential: IssuedCredential, pdf: bytes, count: int, rounds: int
) -> tuple[bool, bytes]:
    """Both sides sign in turn; the result of dangan's last signature is returned."""
    sides = [stock_signer(pki, credential), our_signer(pki, credential)]
    times: list[list[float]] = [[], []]
    results = [b"", b""]
    for sign, _name in sides:
        await timed_batch(sign, pdf, 3, [])  # warm-up: caches, first dummy tokens
    step = -(-count // rounds)
    for start in range(0, count, step):
        for index, (sign, _name) in enumerate(sides):
            results[index] = await timed_batch(sign, pdf, min(step, count - start), times[index])
    print(f"(a) PAdES B-T, RSA-2048, {count} documents of {len(pdf) / 1024:.0f} KB, one at a time")
    medians = [statistics.median(t) for t in times]
    for (_sign, name), median, samples in zip(sides, medians, times, strict=True):
        print(
            f"  {name + ':':60} median {median * 1e3:6.1f} ms  "
            f"{len(samples) / sum(samples):6.1f} docs/s"
        )
    ratio = medians[0] / medians[1]
    print(f"  ratio {ratio:.1f}x (target >= {RATIO_TARGET:.0f}x): {verdict(ratio >= RATIO_TARGET)}")
    return ratio >= RATIO_TARGET, results[1]


async def bench_validation(pki: DevPki, pdf: bytes, count: int, rounds: int) -> bool:
    """Both sides validate the same document, taking turns in slices so that drift hits both."""
    crl = pki.crl(now=system_clock())
    print(
        f"(b) validation of a one-signature B-T document ({len(pdf) / 1024:.0f} KB, RSA-2048), "
        f"{count} times, one at a time"
    )
    with PdfValidator() as validator:
        sides = [
            ("stock pyHanko in process (baseline)", stock_validation(pdf, pki.root, crl)),
            (
                "dangan PdfValidator (warm worker pool)",
                our_validation(validator, pdf, pki.root, crl),
            ),
        ]
        for _name, validate in sides:
            await timed(validate, 5, [])  # warm-up: the worker starts, caches fill
        times: list[list[float]] = [[], []]
        step = -(-count // rounds)
        for start in range(0, count, step):
            for index, (_name, validate) in enumerate(sides):
                await timed(validate, min(step, count - start), times[index])
    medians = [statistics.median(t) for t in times]
    for (name, _validate), samples in zip(sides, times, strict=True):
        p90 = statistics.quantiles(samples, n=10)[-1]
        print(
            f"  {name + ':':60} median {statistics.median(samples) * 1e3:6.1f} ms  "
            f"p90 {p90 * 1e3:6.1f} ms  {len(samples) / sum(samples):6.1f} docs/s"
        )
    ok = medians[1] <= VALIDATION_TARGET_S
    print(
        f"  ratio {medians[0] / medians[1]:.1f}x; "
        f"target median <= {VALIDATION_TARGET_S * 1e3:.0f} ms: {verdict(ok)}"
    )
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--docs", type=int, default=100, help="documents per side in (a)")
    parser.add_argument("--size", type=int, default=50 * 1024, help="PDF size in bytes")
    parser.add_argument("--rounds", type=int, default=10, help="slices the sides alternate in")
    parser.add_argument("--validations", type=int, default=200, help="validations a side in (b)")
    parser.add_argument("--quick", action="store_true", help="20 documents, 50 validations a side")
    args = parser.parse_args()
    if args.quick:
        args.docs, args.validations = 20, 50

    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="dangan-bench-", dir=os.environ.get("TMPDIR")) as tmp:
        pki = DevPki.create(
            Path(tmp) / "pki", now=now, crl_url="http://127.0.0.1/crl", passphrase=PASSPHRASE
        )
        credential = pki.issue_signing_certificate(
            person="张伟", organisation="bench", key_type="rsa2048", now=now
        )
        pdf = make_pdf(args.size)
        ok_sign, signed = asyncio.run(
            bench_signing(pki, credential, pdf, args.docs, args.rounds)
        )
        ok_validate = asyncio.run(
            bench_validation(pki, signed, args.validations, args.rounds)
        )
    print(f"signing: {ok_sign + ok_validate}/2 targets met")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Signing: PAdES B-T on a one-page ~50 KB PDF with RSA-2048, and validating the result.

(a) N documents (default 100), each signed at PAdES B-T through pyHanko's async API.
    Baseline: stock pyHanko, ``SimpleSigner.load`` from PEM files (it parses the key again
    for every signature, twice per document) and ``DummyTimeStamper`` (it parses the TSA
    key for every token). Ours: ``sign_pdf`` with ``LoadedKeySigner`` (key parsed once)
    and ``InProcessTimeStamper`` (dangan's RFC 3161 TSA, in process). Both sign the same
    bytes with the same certificates; they take turns in slices so that drift hits both.
    Target: ours >= 4x faster (ratio of median latencies).
(b) Median time to validate a one-signature document signed by (a)'s engine: read the
    PDF, build a fresh ValidationContext (the dev root), ``async_validate_pdf_signature``.
    Target: median <= 15 ms. For context, in turn with it: the stock-signed document.

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

PASSPHRASE = b"bench passphrase"
POLICY = "1.3.6.1.4.1.57264.1.1"
RATIO_TARGET = 4.0
VALIDATION_TARGET_S = 0.015
SignOne = Callable[[bytes], Awaitable[bytes]]


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


async def validate_once(pdf: bytes, root: asn1_x509.Certificate) -> float:
    started = time.perf_counter()
    signature = PdfFileReader(io.BytesIO(pdf)).embedded_signatures[0]
    context = ValidationContext(trust_roots=[root], allow_fetching=False)
    status = await async_validate_pdf_signature(signature, signer_validation_context=context)
    elapsed = time.perf_counter() - started
    assert status.bottom_line and status.timestamp_validity is not None, status.summary()
    return elapsed


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


async def bench_signing(
    pki: DevPki, credential: IssuedCredential, pdf: bytes, count: int, rounds: int
) -> tuple[bool, bytes, bytes]:
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
    return ratio >= RATIO_TARGET, results[0], results[1]


async def bench_validation(pki: DevPki, stock_pdf: bytes, our_pdf: bytes, count: int) -> bool:
    """The two documents are validated in turn, so that drift hits both alike."""
    root = asn1(pki.root)
    print(
        f"(b) validation of a one-signature B-T document, {count} times "
        "(read + fresh ValidationContext + async_validate_pdf_signature)"
    )
    documents = (("stock pyHanko signature, for context", stock_pdf), ("dangan signature", our_pdf))
    times: list[list[float]] = [[], []]
    for _name, pdf in documents:
        await validate_once(pdf, root)  # warm-up
    for _ in range(count):
        for index, (_name, pdf) in enumerate(documents):
            times[index].append(await validate_once(pdf, root))
    medians = [statistics.median(t) for t in times]
    for (name, pdf), median in zip(documents, medians, strict=True):
        print(f"  {name + ':':40} median {median * 1e3:6.1f} ms  ({len(pdf) / 1024:.0f} KB)")
    ok = medians[1] <= VALIDATION_TARGET_S
    print(f"  target median <= {VALIDATION_TARGET_S * 1e3:.0f} ms: {verdict(ok)}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--docs", type=int, default=100, help="documents per side in (a)")
    parser.add_argument("--size", type=int, default=50 * 1024, help="PDF size in bytes")
    parser.add_argument("--rounds", type=int, default=10, help="slices the sides alternate in")
    parser.add_argument("--validations", type=int, default=200, help="validations in (b)")
    parser.add_argument("--quick", action="store_true", help="20 documents, 50 validations")
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
        ok_sign, stock_pdf, our_pdf = asyncio.run(
            bench_signing(pki, credential, pdf, args.docs, args.rounds)
        )
        ok_validate = asyncio.run(bench_validation(pki, stock_pdf, our_pdf, args.validations))
    print(f"signing: {ok_sign + ok_validate}/2 targets met")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""PAdES signing with what can go wrong: bad PDFs and appearances, timestampers, keys.

Timestamps also come over real HTTP here: an aiohttp server on 127.0.0.1 answers with
dangan's TSA, and pyHanko's ``HTTPTimeStamper`` asks it, as it would ask an external TSA.
"""

from __future__ import annotations

import asyncio
import io
import socket
from datetime import UTC, datetime

import pytest
from aiohttp import web
from asn1crypto import tsp
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from dangan.errors import DanganError
from dangan.signing.errors import KeySourceError, SigningError
from dangan.signing.pades import (
    InProcessTimeStamper,
    InvalidAppearance,
    LoadedKeySigner,
    TimestampUnavailable,
    UnsignablePdf,
    http_timestamper,
    sign_pdf,
)
from dangan.signing.tsa import TimestampAuthority
from tests.signing.pades_tools import one_page_pdf, seal_png, sign, statuses

pytest_plugins = ["tests.signing.pades_fixtures"]
NOW = datetime(2026, 5, 6, 7, 8, 9, tzinfo=UTC)


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


# --- the PDF and the appearance -------------------------------------------------------------


@pytest.mark.parametrize(
    ("pdf", "error"),
    [
        (b"not a PDF at all", UnsignablePdf),
        (b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n", UnsignablePdf),
        (one_page_pdf(password="secret"), UnsignablePdf),
    ],
    ids=["garbage", "no-catalog", "encrypted"],
)
def test_an_unsignable_pdf_gets_a_client_error(signers, pdf: bytes, error: type) -> None:
    with pytest.raises(error) as caught:
        asyncio.run(sign_pdf(pdf, signer=signers["p256"], level="B-B", now=NOW))
    assert isinstance(caught.value, DanganError)
    assert (caught.value.status, caught.value.code) == (422, "pdf_not_signable")


@st.composite
def _damage(draw: st.DrawFn, pdf: bytes) -> bytes:
    """``pdf`` with bytes flipped, a span cut out or repeated, or its end cut off."""
    damaged = bytearray(pdf)
    at = draw(st.integers(0, len(pdf) - 1))
    kind = draw(st.sampled_from(["flip", "cut", "repeat", "truncate"]))
    if kind == "flip":
        damaged[at] ^= draw(st.integers(1, 255))
    elif kind == "cut":
        del damaged[at : at + draw(st.integers(1, 64))]
    elif kind == "repeat":
        damaged[at:at] = damaged[at : at + draw(st.integers(1, 64))]
    else:
        del damaged[at:]
    return bytes(damaged)


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_a_damaged_pdf_is_signed_or_refused_as_unsignable(signers, blank_pdf, data) -> None:
    # DESIGN.md invariant 6: whatever the damage, no exception other than UnsignablePdf.
    damaged = data.draw(_damage(blank_pdf))
    try:
        signed = asyncio.run(sign_pdf(damaged, signer=signers["p256"], level="B-B", now=NOW))
    except UnsignablePdf:
        return
    assert signed.startswith(damaged)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"appearance": b"\x89PNG\r\n\x1a\n broken"}, "not a readable PNG"),
        ({"appearance": b"GIF89a" + bytes(40)}, "not a readable PNG"),
        ({"appearance": _png(Image.new("1", (2049, 2049)))}, "exceeds"),
        ({"appearance": seal_png(), "box": None}, "needs a box"),
        ({"text": "章", "box": (300, 100, 200, 200)}, "x1 < x2"),
        ({"text": "章", "page": 3}, "no page 3"),
    ],
    ids=["broken-png", "gif", "too-many-pixels", "no-box", "inverted-box", "no-such-page"],
)
def test_an_unusable_appearance_gets_a_client_error(
    signers, blank_pdf, options: dict, message: str
) -> None:
    options = {"box": (100, 100, 200, 200), **options}
    with pytest.raises(InvalidAppearance, match=message) as caught:
        asyncio.run(sign_pdf(blank_pdf, signer=signers["p256"], level="B-B", now=NOW, **options))
    assert (caught.value.status, caught.value.code) == (422, "invalid_signature_appearance")


def test_a_signed_field_is_not_signed_again(signers, blank_pdf) -> None:
    signed = sign(blank_pdf, signer=signers["p256"], level="B-B", field_name="审批")
    with pytest.raises(UnsignablePdf, match="already signed"):
        sign(signed, signer=signers["p256"], level="B-B", field_name="审批")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"level": "B-T"}, "needs a timestamper"),
        ({"level": "B-LT", "timestamper": "set below"}, "needs a validation context"),
        ({"level": "B-X"}, "unknown PAdES level"),
        ({"level": "B-B", "now": datetime(2026, 5, 6)}, "timezone-aware"),
    ],
)
def test_misconfigured_levels_are_programming_errors(
    signers, timestamper, blank_pdf, options: dict, message: str
) -> None:
    if options.get("timestamper") == "set below":
        options["timestamper"] = timestamper
    options.setdefault("now", NOW)
    with pytest.raises(ValueError, match=message):
        asyncio.run(sign_pdf(blank_pdf, signer=signers["p256"], **options))


# --- timestampers -----------------------------------------------------------------------------


class _PolicyAskingTimeStamper(InProcessTimeStamper):
    """Asks for a TSA policy dangan's TSA does not have, so the TSA refuses (RFC 3161)."""

    def request_cms(self, message_digest: bytes, md_algorithm: str) -> tuple:
        nonce, request = super().request_cms(message_digest, md_algorithm)
        return nonce, tsp.TimeStampReq({**request.native, "req_policy": "1.2.3.4.5"})


class _NonceForgettingTimeStamper(InProcessTimeStamper):
    """Expects another nonce than it sends, as if the TSA had answered someone else."""

    def request_cms(self, message_digest: bytes, md_algorithm: str) -> tuple:
        nonce, request = super().request_cms(message_digest, md_algorithm)
        return nonce + 1, request


@pytest.mark.parametrize(
    ("kind", "message"),
    [(_PolicyAskingTimeStamper, "unaccepted_policy"), (_NonceForgettingTimeStamper, "nonce")],
)
def test_a_refused_or_wrong_timestamp_fails_the_signature(
    signers, authority: TimestampAuthority, blank_pdf, kind: type, message: str
) -> None:
    with pytest.raises(TimestampUnavailable, match=message) as caught:
        sign(blank_pdf, signer=signers["p256"], level="B-T", timestamper=kind(authority))
    assert (caught.value.status, caught.value.code) == (503, "timestamp_unavailable")


async def _sign_with_tsa_over_http(pdf: bytes, signer, authority: TimestampAuthority) -> bytes:
    async def answer(request: web.Request) -> web.Response:
        body = authority.respond(await request.read())
        return web.Response(body=body, content_type="application/timestamp-reply")

    app = web.Application()
    app.router.add_post("/tsa", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]  # the port the system chose
    try:
        timestamper = http_timestamper(f"http://127.0.0.1:{port}/tsa", timeout=10)
        return await sign_pdf(pdf, signer=signer, level="B-T", timestamper=timestamper, now=NOW)
    finally:
        await runner.cleanup()


def test_an_external_tsa_over_http_timestamps_the_signature(
    signers, authority, blank_pdf, make_context
) -> None:
    signed = asyncio.run(_sign_with_tsa_over_http(blank_pdf, signers["rsa2048"], authority))
    assert signed.startswith(blank_pdf)
    (status,) = statuses(signed, make_context())
    assert status.bottom_line, status.summary()
    assert status.timestamp_validity is not None and status.timestamp_validity.trusted


def test_an_unreachable_tsa_fails_the_signature(signers, blank_pdf) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago, now closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    timestamper = http_timestamper(f"http://127.0.0.1:{port}/tsa", timeout=5)
    with pytest.raises(TimestampUnavailable):
        sign(blank_pdf, signer=signers["p256"], level="B-T", timestamper=timestamper)


def test_https_only_refuses_a_plain_http_url() -> None:
    with pytest.raises(ValueError, match="HTTPS"):
        http_timestamper("http://tsa.example/", https_only=True)


# --- the signer -------------------------------------------------------------------------------


def test_the_signer_signs_raw_data_with_the_loaded_key(signers, credentials) -> None:
    for kind, signer in signers.items():
        signature = asyncio.run(signer.async_sign_raw(b"signed attributes", "sha256"))
        public_key = credentials[kind].certificate.public_key()
        if kind == "rsa2048":
            public_key.verify(signature, b"signed attributes", padding.PKCS1v15(), hashes.SHA256())
        else:
            public_key.verify(signature, b"signed attributes", ec.ECDSA(hashes.SHA256()))
        placeholder = asyncio.run(signer.async_sign_raw(b"x", "sha256", dry_run=True))
        assert len(placeholder) == (256 if kind == "rsa2048" else 72)


def test_the_signer_refuses_other_digests(signers) -> None:
    with pytest.raises(SigningError, match="SHA-256 only"):
        asyncio.run(signers["p256"].async_sign_raw(b"data", "sha384"))


def test_the_signer_refuses_keys_it_cannot_use(credentials) -> None:
    certificate = credentials["p256"].certificate
    chain = credentials["p256"].chain
    keys = {
        "someone else's key": (ec.generate_private_key(ec.SECP256R1()), KeySourceError),
        "P-384": (ec.generate_private_key(ec.SECP384R1()), KeySourceError),
        "RSA-1024": (rsa.generate_private_key(public_exponent=65537, key_size=1024), KeySourceError),
        "Ed25519": (ed25519.Ed25519PrivateKey.generate(), KeySourceError),
    }
    for private_key, error in keys.values():
        with pytest.raises(error):
            LoadedKeySigner.create(certificate=certificate, private_key=private_key, chain=chain)

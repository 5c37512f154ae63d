"""Tests for the validation worker's fast paths (``dangan.signing._validation_speedups``).

Each fast path must give what the upstream code gives: the same value, the same error,
the same stream position. The functions are tested here without installing them (this
process keeps pyHanko and asn1crypto as shipped); the worker processes, which do install
them, must give the same reports as an unpatched validation in this process.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import subprocess
import sys
from datetime import UTC, datetime

import pytest
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives import serialization
from hypothesis import given, settings
from hypothesis import strategies as st
from pyhanko.pdf_utils import generic

from dangan.signing import _validation_speedups as speedups
from dangan.signing._validation_check import ValidationJob, validate_document
from dangan.signing.validation import PdfValidator
from tests.signing.pades_tools import level_options, sign

pytest_plugins = ["tests.signing.pades_fixtures"]

UPSTREAM_HEX = generic.read_hex_string_from_stream
UPSTREAM_EQ = asn1_x509.Name.__eq__
UPSTREAM_HASHABLE = asn1_x509.Name.hashable.fget


def test_this_process_runs_upstream_code() -> None:
    """Nothing in the test process installs the speedups (the comparisons need upstream)."""
    assert UPSTREAM_HEX.__module__ == "pyhanko.pdf_utils.generic"
    assert UPSTREAM_EQ.__module__ == "asn1crypto.x509"


# --- hex strings --------------------------------------------------------------------------


def _read(reader, data: bytes) -> tuple[object, int]:
    """What ``reader`` makes of ``data``: (value or error, stream position afterwards)."""
    stream = io.BytesIO(data)
    try:
        value: object = reader(stream)
        outcome = (type(value), bytes(value) if isinstance(value, bytes) else str(value))
    except Exception as exc:  # the comparison is of the errors themselves
        outcome = (type(exc), str(exc))
    return outcome, stream.tell()


FAST_HEX = speedups._hex_reader(UPSTREAM_HEX)

HEX_CASES = {
    "plain": b"<48656c6c6f>",
    "empty": b"<>",
    "upper and lower case": b"<4A4b>",
    "odd number of digits": b"<414>",
    "every white-space": b"<4 1\t4\n2\r4\x0c3\x00>",
    "followed by more": b"<4142> /Next 1 0 R >>",
    "text with a byte-order mark": b"<FEFF00410042>",
    "a comment inside": b"<41 % comment > still comment\n 42>",
    "a bad byte": b"<41x2>",
    "a nested bracket": b"<41<42>",
    "no end": b"<4142",
    "no end after white-space": b"<4142   ",
    "only the bracket": b"<",
    "long": b"<" + b"0123456789abcdef" * 4096 + b">",
    "long without an end": b"<" + b"ab" * 10_000,
    "long, then a bad byte": b"<" + b"ab" * 10_000 + b"z" + b"cd" * 10 + b">",
    **{f"ending at byte {n}": b"<" + b"a" * (n - 2) + b">" for n in (255, 256, 257, 512, 513)},
}


@pytest.mark.parametrize("name", list(HEX_CASES))
def test_hex_strings_read_as_upstream_reads_them(name: str) -> None:
    data = HEX_CASES[name]
    assert _read(FAST_HEX, data) == _read(UPSTREAM_HEX, data)


@settings(max_examples=400, deadline=None)
@given(
    body=st.lists(
        st.sampled_from([b"0", b"a", b"F", b"9", b" ", b"\n", b"\x00", b"%", b">", b"<", b"g"]),
        max_size=40,
    ),
    tail=st.binary(max_size=8),
)
def test_any_hex_string_reads_as_upstream_reads_it(body: list[bytes], tail: bytes) -> None:
    data = b"<" + b"".join(body) + tail
    assert _read(FAST_HEX, data) == _read(UPSTREAM_HEX, data)


def test_a_long_hex_string_is_read_in_one_step() -> None:
    """The point of the fast path: /Contents of a signature without a byte-wise loop."""
    contents = bytes(range(256)) * 64
    stream = io.BytesIO(b"<" + contents.hex().encode() + b">")
    assert bytes(FAST_HEX(stream)) == contents


# --- X.509 names --------------------------------------------------------------------------


def _name(**attributes: str) -> asn1_x509.Name:
    return asn1_x509.Name.build(attributes)


NAMES = [
    _name(common_name="Issuing CA", organization_name="dangan"),
    _name(common_name="issuing  ca", organization_name="DANGAN"),  # RFC 4518: equal
    _name(common_name="Issuing CA", organization_name="other"),
    _name(common_name="北京市朝阳区市场监督管理局"),
    _name(common_name="Root"),
]


def test_name_equality_and_hashing_are_upstream_s_repeatedly() -> None:
    equal = speedups._memoised_name_equality(UPSTREAM_EQ)
    hashable = speedups._memoised_name_hashable(UPSTREAM_HASHABLE)
    for _ in range(3):  # the second and third round come from the memo
        for a in NAMES:
            assert hashable(a) == UPSTREAM_HASHABLE(a)
            assert equal(a, "not a name") is False
            for b in NAMES:
                assert equal(a, b) == UPSTREAM_EQ(a, b)
    assert equal(NAMES[0], NAMES[1]) and not equal(NAMES[0], NAMES[2])


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from(["a", "A", " ", "b", "\u00a0", "é", "e\u0301"]), max_size=6),
    st.lists(st.sampled_from(["a", "A", " ", "b", "\u00a0", "é", "e\u0301"]), max_size=6),
)
def test_any_two_names_compare_as_upstream_compares_them(x: list[str], y: list[str]) -> None:
    equal = speedups._memoised_name_equality(UPSTREAM_EQ)
    a, b = _name(common_name="".join(x) or "x"), _name(common_name="".join(y) or "x")
    assert equal(a, b) == UPSTREAM_EQ(a, b)
    assert equal(a, b) == UPSTREAM_EQ(a, b)


def test_a_name_upstream_rejects_is_rejected_every_time() -> None:
    """Errors are not memoised: a prohibited code point (RFC 4518 §2.4) raises each time."""
    bad, same = _name(common_name="private \ue000 use"), _name(common_name="private \ue000 use")
    equal = speedups._memoised_name_equality(UPSTREAM_EQ)
    hashable = speedups._memoised_name_hashable(UPSTREAM_HASHABLE)
    for _ in range(2):
        with pytest.raises(ValueError):
            UPSTREAM_EQ(bad, same)
        with pytest.raises(ValueError):
            equal(bad, same)
        with pytest.raises(ValueError):
            hashable(bad)


def test_the_memos_stay_bounded_and_right(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(speedups, "_MEMO_MAX_ENTRIES", 2)
    monkeypatch.setattr(speedups, "_MEMO_MAX_NAME", 40)
    equal = speedups._memoised_name_equality(UPSTREAM_EQ)
    hashable = speedups._memoised_name_hashable(UPSTREAM_HASHABLE)
    long = _name(common_name="x" * 100)  # past the size limit: never memoised
    for _ in range(2):  # the memos fill, are emptied and fill again
        for a in [*NAMES, long]:
            assert hashable(a) == UPSTREAM_HASHABLE(a)
            for b in [*NAMES, long]:
                assert equal(a, b) == UPSTREAM_EQ(a, b)


def test_install_patches_once() -> None:
    """In a fresh interpreter, as a worker does: installing twice wraps once."""
    code = (
        "from asn1crypto import x509\n"
        "from pyhanko.pdf_utils import generic\n"
        "from dangan.signing._validation_speedups import install_speedups\n"
        "before = generic.read_hex_string_from_stream\n"
        "install_speedups()\n"
        "patched = (generic.read_hex_string_from_stream, x509.Name.__eq__, x509.Name.hashable)\n"
        "install_speedups()\n"
        "assert patched[0] is not before\n"
        "assert (generic.read_hex_string_from_stream, x509.Name.__eq__, x509.Name.hashable)"
        " == patched\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# --- the whole validation, worker (with speedups) against this process (without) ----------


@pytest.fixture(scope="module")
def documents(signers, timestamper, make_context, blank_pdf) -> dict[str, bytes]:
    b_t = sign(blank_pdf, signer=signers["rsa2048"], level="B-T", timestamper=timestamper)
    return {
        "B-B": sign(blank_pdf, signer=signers["p256"], level="B-B"),
        "B-T": b_t,
        "B-LTA": sign(
            blank_pdf,
            signer=signers["rsa2048"],
            **level_options("B-LTA", timestamper, make_context),
        ),
        "two signatures": sign(b_t, signer=signers["p256"], level="B-T", timestamper=timestamper),
        "tampered": b_t.replace(b"dangan test page", b"dangan TEST PAGE"),
        "truncated": b_t[: len(b_t) // 2],
    }


def test_worker_reports_equal_upstream_reports(pki, documents) -> None:
    crl, moment = pki.crl(now=datetime.now(UTC)), datetime.now(UTC)
    with PdfValidator() as validator:
        for name, pdf in documents.items():
            upstream = validate_document(
                ValidationJob(
                    pdf=pdf,
                    trust_roots=(pki.root.public_bytes(serialization.Encoding.DER),),
                    crls=(crl,),
                    now=moment,
                    pdf_sha256=hashlib.sha256(pdf).hexdigest(),
                )
            )
            worker = asyncio.run(
                validator.validate(pdf, trust_roots=[pki.root], crls=[crl], now=moment)
            )
            assert worker == upstream, name

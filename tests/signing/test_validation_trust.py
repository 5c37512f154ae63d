"""Tests for the worker's parsed trust material (``dangan.signing._validation_trust``)."""

from __future__ import annotations

from datetime import UTC, datetime

from cryptography.hazmat.primitives import serialization

from dangan.signing._validation_trust import ParsedTrustMaterial


def _der(certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.DER)


def test_the_same_bytes_are_parsed_once_and_others_apart(pki) -> None:
    trust = ParsedTrustMaterial()
    root, issuing = _der(pki.root), _der(pki.issuing)
    first = trust.certificates([root, issuing])
    again = trust.certificates([bytes(root), issuing])  # equal bytes, another object
    assert [c.dump() for c in first] == [root, issuing]
    assert all(a is b for a, b in zip(first, again, strict=True))
    old, new = pki.crl(now=datetime(2025, 1, 1, tzinfo=UTC)), pki.crl(now=datetime.now(UTC))
    parsed_old, parsed_new = trust.crls([old, new])
    assert (parsed_old.dump(), parsed_new.dump()) == (old, new)


def test_the_least_recently_used_go_first(pki) -> None:
    trust = ParsedTrustMaterial(max_entries=2)
    a, b, c = (_der(x) for x in (pki.root, pki.issuing, pki.tsa.certificate))
    (kept,) = trust.certificates([a])
    (dropped,) = trust.certificates([b])
    trust.certificates([a])  # a is now the most recent
    trust.certificates([c])  # b goes
    assert trust.certificates([a])[0] is kept
    (parsed_again,) = trust.certificates([b])
    assert parsed_again is not dropped and parsed_again.dump() == b

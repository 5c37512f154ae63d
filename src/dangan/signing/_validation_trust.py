"""Private: trust roots and CRLs parsed once per worker process, reused across documents.

A service passes the same roots and the same CRL (re-signed hourly) with every document;
parsing them again each time, and losing asn1crypto's lazily parsed fields and prepared
names with them, is wasted work. The parsed objects are shared between validation
contexts but never changed by them: pyHanko's ``ValidationContext`` keeps its own
registries, so nothing learnt from one document (its embedded certificates, revocation
results) reaches the next.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from asn1crypto import crl as asn1_crl
from asn1crypto import x509 as asn1_x509

Parsed = TypeVar("Parsed")

#: Distinct certificates, and distinct CRLs, kept parsed per worker.
MAX_ENTRIES = 32


class ParsedTrustMaterial:
    """Parsed trust roots and CRLs, keyed by their DER bytes; least recently used go first."""

    def __init__(self, *, max_entries: int = MAX_ENTRIES) -> None:
        self._certificates = _LruParser(asn1_x509.Certificate.load, max_entries)
        self._crls = _LruParser(asn1_crl.CertificateList.load, max_entries)

    def certificates(self, ders: Sequence[bytes]) -> list[asn1_x509.Certificate]:
        """The certificates ``ders`` (DER), parsed."""
        return [self._certificates.parse(der) for der in ders]

    def crls(self, ders: Sequence[bytes]) -> list[asn1_crl.CertificateList]:
        """The CRLs ``ders`` (DER), parsed."""
        return [self._crls.parse(der) for der in ders]


class _LruParser(Generic[Parsed]):
    def __init__(self, load: Callable[[bytes], Parsed], max_entries: int) -> None:
        self._load = load
        self._max_entries = max_entries
        self._parsed: OrderedDict[bytes, Parsed] = OrderedDict()

    def parse(self, der: bytes) -> Parsed:
        parsed = self._parsed.get(der)
        if parsed is not None:
            self._parsed.move_to_end(der)
            return parsed
        parsed = self._load(der)
        self._parsed[der] = parsed
        if len(self._parsed) > self._max_entries:
            self._parsed.popitem(last=False)
        return parsed

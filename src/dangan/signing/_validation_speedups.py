"""Private: faster paths through pyHanko and asn1crypto for the validation worker only.

Profiling the validation of a one-signature B-T document (bench/bench_signing.py (b))
showed two hot spots that are not validation work:

* pyHanko reads a hex string one byte at a time through a generator; the /Contents of a
  signature (ISO 32000-2 §12.8.1) is a hex string of some 10–30 KB, so reading the
  signature dictionary took a third of the worker's time (6.5 of 19 ms). The fast path
  below decodes a run of hex digits and white-space (ISO 32000-2 §7.3.4.3) ended by
  ``>`` in one step and hands anything else (a comment, a bad byte, the end of the file)
  to pyHanko's own reader, so errors and odd cases behave exactly as before, at no more
  than the cost of pyHanko's reader.
* asn1crypto compares and hashes X.509 names with RFC 4518 string preparation
  (RFC 5280 §7.1) of every attribute, on freshly parsed certificates each time: a third
  of what remained (4 of 12 ms). The result depends only on the DER of the names, so it
  is memoised by DER (bounded; an error is raised again, not remembered).

Both replace module attributes of pyHanko and asn1crypto, so :func:`install_speedups`
is called only in the worker processes of ``_validation_pool``, never in the service.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Callable
from typing import Any

from asn1crypto import x509 as asn1_x509
from pyhanko.pdf_utils import generic

#: ISO 32000-2 §7.2.3 Table 1: the six white-space characters.
_WHITESPACE = b" \t\n\f\r\x00"
_PLAIN_HEX_RUN = re.compile(rb"[0-9A-Fa-f \t\n\f\r\x00]*")
#: Bytes read at first when reading a hex string (doubled while it goes on).
_FIRST_READ = 256
#: Names longer than this (DER bytes) are compared and hashed without the memo.
_MEMO_MAX_NAME = 1024
#: Entries each memo holds before it is emptied and refilled.
_MEMO_MAX_ENTRIES = 4096

_installed = False


def install_speedups() -> None:
    """Route pyHanko's hex-string reader and asn1crypto's name matching through the fast
    paths of this module (idempotent)."""
    global _installed
    if _installed:
        return
    generic.read_hex_string_from_stream = _hex_reader(generic.read_hex_string_from_stream)
    name = asn1_x509.Name
    # Name.__ne__ is ``not self == other``, so it follows the new __eq__.
    name.__eq__ = _memoised_name_equality(name.__eq__)  # type: ignore[assignment,method-assign]
    hashable = _memoised_name_hashable(name.hashable.fget)  # type: ignore[union-attr]
    name.hashable = property(hashable)  # type: ignore[assignment,method-assign]
    _installed = True


def _hex_reader(upstream: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """pyHanko's ``read_hex_string_from_stream``, decoding plain hex strings in one step."""

    def read_hex_string(stream: Any) -> Any:
        start = stream.tell()
        data = stream.read(_FIRST_READ)
        end = 1  # where the run of digits and white-space after "<" stops
        while data[:1] == b"<":
            end = _PLAIN_HEX_RUN.match(data, end).end()  # type: ignore[union-attr]
            more = stream.read(len(data)) if end == len(data) else b""
            if not more:
                break
            data += more
        if data[:1] != b"<" or data[end : end + 1] != b">":
            stream.seek(start)
            return upstream(stream)
        digits = data[1:end].translate(None, _WHITESPACE)
        if len(digits) % 2:  # ISO 32000-2 §7.3.4.3: a missing final digit is 0
            digits += b"0"
        stream.seek(start + end + 1)
        return generic.pdf_string(binascii.unhexlify(digits))

    return read_hex_string


def _memoised_name_equality(upstream: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    """``Name.__eq__`` remembered per pair of DER encodings; errors are not remembered."""
    memo: dict[tuple[bytes, bytes], bool] = {}

    def equal(self: Any, other: Any) -> bool:
        if not isinstance(other, asn1_x509.Name):
            return False
        key = (self.dump(), other.dump())
        if len(key[0]) > _MEMO_MAX_NAME or len(key[1]) > _MEMO_MAX_NAME:
            return upstream(self, other)
        known = memo.get(key)
        if known is None:
            known = upstream(self, other)
            if len(memo) >= _MEMO_MAX_ENTRIES:
                memo.clear()
            memo[key] = known
        return known

    return equal


def _memoised_name_hashable(upstream: Callable[[Any], str]) -> Callable[[Any], str]:
    """``Name.hashable`` remembered per DER encoding; errors are not remembered."""
    memo: dict[bytes, str] = {}

    def hashable(self: Any) -> str:
        der = self.dump()
        if len(der) > _MEMO_MAX_NAME:
            return upstream(self)
        known = memo.get(der)
        if known is None:
            known = upstream(self)
            if len(memo) >= _MEMO_MAX_ENTRIES:
                memo.clear()
            memo[der] = known
        return known

    return hashable

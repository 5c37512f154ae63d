"""RFC 8785 canonical JSON, with a fast path for the plain values that events hold.

``rfc8785.dumps`` walks values in pure Python and was most of an append's CPU time. For
values built only from ``str``, ``int`` within ±(2^53 - 1), ``bool``, ``None``, ``list`` and
``dict`` with ASCII keys, the standard library's C encoder already writes the RFC 8785
form: no insignificant whitespace (§3.2.1), ECMAScript string escaping — ``\\"``, ``\\\\``,
``\\b \\f \\n \\r \\t`` and ``\\u00xx`` in lowercase hex for the other controls, every other
character as itself (§3.2.2.2), integers as plain digits (§3.2.2.3) — and keys sorted by
code point, which for ASCII keys is the UTF-16 code unit order of §3.2.3. Anything else
(floats, big integers, tuples, subclasses, non-ASCII keys, lone surrogates) goes to
``rfc8785.dumps``, so the output is always byte-identical to it, errors included.
"""

from __future__ import annotations

import json
from typing import Any

import rfc8785

# The integer domain rfc8785 accepts (IEEE 754 doubles are exact up to 2^53 - 1).
_SAFE_INT = 2**53 - 1

# Leaves that need no further check (ints do: their range).
_SCALARS = frozenset({str, bool, type(None)})

_ENCODER = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), sort_keys=True, check_circular=False
)


def canonical_json(value: Any) -> bytes:
    """``rfc8785.dumps(value)``, computed by the C JSON encoder when ``value`` is plain."""
    try:
        plain = _is_plain(value)
    except RecursionError:
        plain = False
    if plain:
        try:
            return _ENCODER.encode(value).encode("utf-8")
        except UnicodeEncodeError:
            pass  # a lone surrogate: rfc8785 raises its own error for it
    return rfc8785.dumps(value)


def _is_plain(value: Any) -> bool:
    """Whether ``value`` is made only of types on which the C encoder matches RFC 8785."""
    kind = type(value)
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str or not key.isascii():
                return False
            if type(item) not in _SCALARS and not _is_plain(item):
                return False
        return True
    if kind is list:
        return all(type(item) in _SCALARS or _is_plain(item) for item in value)
    if kind is int:
        return -_SAFE_INT <= value <= _SAFE_INT
    return kind in _SCALARS

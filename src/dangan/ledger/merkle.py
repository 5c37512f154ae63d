"""Merkle tree hashes, inclusion proofs and consistency proofs (RFC 9162 §2.1).

Producers take the list of leaf hashes and follow the RFC's recursive definitions
(MTH §2.1.1, PATH §2.1.3.1, SUBPROOF §2.1.4.1) line by line, so they double as the
reference for :mod:`dangan.ledger._tree`, which answers the same questions from stored
nodes in O(log n) reads. Verifiers run the RFC's iterative algorithms (§2.1.3.2,
§2.1.4.2) and answer ``False``, never raise, on malformed input: they see untrusted data.

Consistency from size 0: RFC 9162 §2.1.4 only defines proofs for ``0 < m``. Here the
empty tree is a prefix of every tree, its proof is ``[]``, and verification demands
that the old root be the empty-tree hash (``EMPTY_ROOT``) and the proof be empty.

>>> leaves = [leaf_hash(bytes([i])) for i in range(5)]
>>> verify_inclusion(leaves[3], 3, 5, inclusion_proof(leaves, 3), root(leaves))
True
>>> verify_consistency(2, 5, root(leaves[:2]), root(leaves), consistency_proof(leaves, 2))
True
"""

from __future__ import annotations

import hashlib
import hmac
import operator
from collections.abc import Sequence

#: Length of every hash in the tree (SHA-256, RFC 9162 §2.1).
HASH_SIZE = 32

#: MTH({}) = HASH(), the root of the empty tree (RFC 9162 §2.1.1).
EMPTY_ROOT = hashlib.sha256(b"").digest()

# Domain separation prefixes for leaves and interior nodes (RFC 9162 §2.1.1).
_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


def leaf_hash(data: bytes) -> bytes:
    """The hash of one log entry, SHA-256(0x00 ‖ data) (RFC 9162 §2.1.1)."""
    digest = hashlib.sha256(_LEAF_PREFIX)
    digest.update(data)
    return digest.digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The hash of an interior node, SHA-256(0x01 ‖ left ‖ right) (RFC 9162 §2.1.1)."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def split_point(n: int) -> int:
    """The largest power of two smaller than ``n`` (``n >= 2``), where MTH splits a list."""
    return 1 << ((n - 1).bit_length() - 1)


# --- producers: the RFC definitions over an in-memory list of leaf hashes ------------


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH of the tree whose leaves have these hashes; the empty tree gives ``EMPTY_ROOT``."""
    if not leaf_hashes:
        return EMPTY_ROOT
    return _mth(leaf_hashes, 0, len(leaf_hashes))


def inclusion_proof(leaf_hashes: Sequence[bytes], index: int) -> list[bytes]:
    """PATH(index, D[n]), the audit path of leaf ``index``, leaf side first (RFC 9162 §2.1.3.1).

    Raises ValueError unless ``0 <= index < len(leaf_hashes)``.
    """
    index = operator.index(index)
    if not 0 <= index < len(leaf_hashes):
        raise ValueError(f"leaf index {index} is outside a tree of {len(leaf_hashes)} leaves")
    return _path(leaf_hashes, index, 0, len(leaf_hashes))


def consistency_proof(leaf_hashes: Sequence[bytes], old_size: int) -> list[bytes]:
    """PROOF(old_size, D[n]) = SUBPROOF(old_size, D[n], true) (RFC 9162 §2.1.4.1).

    ``old_size == n`` and ``old_size == 0`` give ``[]``; raises ValueError unless
    ``0 <= old_size <= len(leaf_hashes)``.
    """
    old_size = operator.index(old_size)
    if not 0 <= old_size <= len(leaf_hashes):
        raise ValueError(f"old size {old_size} is outside 0..{len(leaf_hashes)}")
    if old_size == 0:
        return []  # our convention, see the module docstring
    return _subproof(leaf_hashes, old_size, 0, len(leaf_hashes), True)


def _mth(leaves: Sequence[bytes], lo: int, hi: int) -> bytes:
    """MTH(D[lo:hi]) for a non-empty range of leaf hashes (RFC 9162 §2.1.1)."""
    if hi - lo == 1:
        return leaves[lo]
    k = lo + split_point(hi - lo)
    return node_hash(_mth(leaves, lo, k), _mth(leaves, k, hi))


def _path(leaves: Sequence[bytes], m: int, lo: int, hi: int) -> list[bytes]:
    """PATH(m, D[lo:hi]) with ``m`` counted from ``lo`` (RFC 9162 §2.1.3.1)."""
    if hi - lo == 1:
        return []
    k = split_point(hi - lo)
    if m < k:
        return [*_path(leaves, m, lo, lo + k), _mth(leaves, lo + k, hi)]
    return [*_path(leaves, m - k, lo + k, hi), _mth(leaves, lo, lo + k)]


def _subproof(leaves: Sequence[bytes], m: int, lo: int, hi: int, b: bool) -> list[bytes]:
    """SUBPROOF(m, D[lo:hi], b) with ``m`` counted from ``lo`` (RFC 9162 §2.1.4.1)."""
    if m == hi - lo:
        return [] if b else [_mth(leaves, lo, hi)]
    k = split_point(hi - lo)
    if m <= k:
        return [*_subproof(leaves, m, lo, lo + k, b), _mth(leaves, lo + k, hi)]
    return [*_subproof(leaves, m - k, lo + k, hi, False), _mth(leaves, lo, lo + k)]


# --- verifiers: the RFC algorithms, total over arbitrary input ------------------------


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """Whether ``proof`` shows leaf ``index`` of the ``size``-leaf tree ``root`` is ``leaf_hash``.

    The algorithm of RFC 9162 §2.1.3.2; any malformed argument gives ``False``.
    """
    path = _as_hashes(proof)
    if path is None or not (_is_hash(leaf_hash) and _is_hash(root)):
        return False
    if not (_is_count(index) and _is_count(size)) or index >= size:
        return False  # step 1
    fn, sn = index, size - 1  # step 2
    r = leaf_hash  # step 3
    for p in path:  # step 4
        if sn == 0:
            return False  # 4a: the proof is too long
        if fn & 1 or fn == sn:  # 4b
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1  # 4c
    return sn == 0 and hmac.compare_digest(r, root)  # step 5


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Whether ``proof`` shows the ``old_size`` tree with ``old_root`` is a prefix of the new one.

    The algorithm of RFC 9162 §2.1.4.2; any malformed argument gives ``False``.
    """
    path = _as_hashes(proof)
    if path is None or not (_is_hash(old_root) and _is_hash(new_root)):
        return False
    if not (_is_count(old_size) and _is_count(new_size)) or old_size > new_size:
        return False
    if old_size == 0:  # our convention, see the module docstring
        new_ok = new_size > 0 or hmac.compare_digest(new_root, EMPTY_ROOT)
        return not path and new_ok and hmac.compare_digest(old_root, EMPTY_ROOT)
    if old_size == new_size:  # SUBPROOF(m, D[m], true) = {} (RFC 9162 §2.1.4.1)
        return not path and hmac.compare_digest(old_root, new_root)
    if not path:
        return False  # step 1
    if old_size & (old_size - 1) == 0:
        path = [old_root, *path]  # step 2
    fn, sn = old_size - 1, new_size - 1  # step 3
    while fn & 1:  # step 4
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]  # step 5
    for c in path[1:]:  # step 6
        if sn == 0:
            return False  # the proof is too long
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    # step 7
    return sn == 0 and hmac.compare_digest(fr, old_root) and hmac.compare_digest(sr, new_root)


def _is_hash(value: object) -> bool:
    """Whether ``value`` is a SHA-256 hash: exactly 32 bytes."""
    return isinstance(value, bytes) and len(value) == HASH_SIZE


def _is_count(value: object) -> bool:
    """Whether ``value`` is a non-negative int (``bool`` is not a size or an index)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _as_hashes(proof: object) -> list[bytes] | None:
    """The proof as a list when it is a sequence of 32-byte hashes, else ``None``."""
    if not isinstance(proof, Sequence) or isinstance(proof, (str, bytes, bytearray)):
        return None
    path = list(proof)
    return path if all(_is_hash(p) for p in path) else None

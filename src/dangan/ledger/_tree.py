"""Proofs from a stored tree that keeps the hash of every complete perfect subtree.

A node is named by ``(level, index)``: it covers leaves ``[index·2^level,
(index+1)·2^level)``, cut off at the tree size. It is *perfect* when that range is whole;
then its hash never changes and a store can keep it, level 0 holding the leaf hashes.
:func:`append_nodes` gives the perfect nodes a new leaf completes.

Every node of the RFC 9162 §2.1.1 tree of size n has this shape, and only the nodes on
its right edge can be cut off. Such an *ephemeral* node spans ``[start, n)`` with
``start`` a multiple of the largest power of two in ``n - start``, so it is the right
fold of the perfect subtrees given by the binary digits of ``n - start``
(:func:`perfect_subtrees`, :func:`subtree_hash`). A proof takes at most one ephemeral
node (it leaves the right edge once), so it costs at most about 2·log2(n) reads.

``get(level, index)`` must return the stored hash of a perfect node; nothing here asks
for a node that is not complete in the tree size it was given.

A store keeps the nodes above the leaves at :func:`node_position`: numbered in the order
appends complete them (a post-order walk), the nodes that one append completes are
consecutive, so they land side by side however many levels they span.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from dangan.ledger.merkle import EMPTY_ROOT, HASH_SIZE, node_hash, split_point

#: Reads the stored hash of the perfect subtree ``(level, index)``.
GetNode = Callable[[int, int], bytes]


def node_range(level: int, index: int, size: int) -> tuple[int, int]:
    """The leaves ``[start, end)`` that node ``(level, index)`` covers in a tree of ``size``."""
    start = index << level
    return start, min(start + (1 << level), size)


def perfect_subtrees(start: int, end: int) -> list[tuple[int, int]]:
    """The perfect subtrees, left to right, whose right fold is MTH(D[start:end]).

    MTH splits off the largest power of two on the left (RFC 9162 §2.1.1), so the pieces
    follow the binary digits of ``end - start``; ``start`` must be a multiple of the
    largest one (true of every node in a tree), else ValueError.
    """
    length = end - start
    if start < 0 or length < 0:
        raise ValueError(f"[{start}, {end}) is not a range of leaves")
    if length and start % (1 << (length.bit_length() - 1)):
        raise ValueError(f"[{start}, {end}) does not split into stored perfect subtrees")
    if length and not length & (length - 1):  # a perfect subtree itself (most proof nodes)
        level = length.bit_length() - 1
        return [(level, start >> level)]
    pieces = []
    for level in reversed(range(length.bit_length())):
        if length >> level & 1:
            pieces.append((level, start >> level))
            start += 1 << level
    return pieces


def subtree_hash(get: GetNode, start: int, end: int) -> bytes:
    """MTH(D[start:end]) from stored perfect subtrees, at most log2(end - start) + 1 reads."""
    pieces = perfect_subtrees(start, end)
    if not pieces:
        return EMPTY_ROOT  # MTH({}) = HASH() (RFC 9162 §2.1.1)
    digest = get(*pieces[-1])
    for level, index in reversed(pieces[:-1]):
        digest = node_hash(get(level, index), digest)
    return digest


def root_from(get: GetNode, size: int) -> bytes:
    """MTH(D[size]), the root of the first ``size`` leaves, from stored perfect subtrees."""
    return subtree_hash(get, 0, size)


def inclusion_nodes(index: int, size: int) -> list[tuple[int, int]]:
    """The nodes whose hashes form PATH(index, D[size]), leaf side first (RFC 9162 §2.1.3.1).

    Raises ValueError unless ``0 <= index < size``.
    """
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is outside a tree of {size} leaves")
    nodes = []
    lo, hi = 0, size
    while hi - lo > 1:  # walk down from the root; the RFC lists siblings bottom-up
        mid = lo + split_point(hi - lo)
        if index < mid:
            nodes.append(_node_at(mid, hi))
            hi = mid
        else:
            nodes.append(_node_at(lo, mid))
            lo = mid
    nodes.reverse()
    return nodes


def consistency_nodes(old_size: int, new_size: int) -> list[tuple[int, int]]:
    """The nodes of the new tree whose hashes form PROOF(old_size, D[new_size]) (RFC 9162 §2.1.4.1).

    ``old_size`` 0 or ``new_size`` give ``[]``; raises ValueError unless
    ``0 <= old_size <= new_size``.
    """
    if not 0 <= old_size <= new_size:
        raise ValueError(f"old size {old_size} is outside 0..{new_size}")
    if old_size in (0, new_size):
        return []
    nodes = []
    lo, hi, b = 0, new_size, True
    while old_size < hi:  # SUBPROOF(m, D[lo:hi], b) with m < n; walk down from the root
        mid = lo + split_point(hi - lo)
        if old_size <= mid:
            nodes.append(_node_at(mid, hi))
            hi = mid
        else:
            nodes.append(_node_at(lo, mid))
            lo, b = mid, False
    if not b:
        nodes.append(_node_at(lo, hi))  # SUBPROOF(m, D[m], false) = {MTH(D[m])}
    nodes.reverse()
    return nodes


def inclusion_proof_from(get: GetNode, index: int, size: int) -> list[bytes]:
    """PATH(index, D[size]) from stored perfect subtrees, in O(log size) reads."""
    return [_node_hash_from(get, node, size) for node in inclusion_nodes(index, size)]


def consistency_proof_from(get: GetNode, old_size: int, new_size: int) -> list[bytes]:
    """PROOF(old_size, D[new_size]) from stored perfect subtrees, in O(log new_size) reads."""
    nodes = consistency_nodes(old_size, new_size)
    return [_node_hash_from(get, node, new_size) for node in nodes]


def append_nodes(size: int, leaf: bytes, get: GetNode) -> list[tuple[int, int, bytes]]:
    """The perfect nodes ``(level, index, hash)`` completed by appending leaf hash ``leaf``.

    ``leaf`` is already ``leaf_hash(entry)`` and lands at position ``size``; each node
    it completes is a right child's parent, so this reads at most log2(size) siblings.
    """
    if size < 0:
        raise ValueError(f"tree size {size} is negative")
    if not (isinstance(leaf, bytes) and len(leaf) == HASH_SIZE):
        raise ValueError("a leaf must be given as its 32-byte leaf hash")
    level, index, digest = 0, size, leaf
    created = [(level, index, digest)]
    while index & 1:
        digest = node_hash(get(level, index - 1), digest)
        level, index = level + 1, index >> 1
        created.append((level, index, digest))
    return created


def grown_tree(frontier: dict[int, bytes], base: int, leaves: Sequence[bytes]) -> GetNode:
    """Perfect nodes of the tree of ``base + len(leaves)`` leaves, from the frontier of its
    first ``base`` leaves (``{level: hash}``) and the leaf hashes after them.

    Enough for any proof about the new leaves: a node left of ``base`` that such a proof
    needs is a frontier subtree, and a node spanning ``base`` splits into frontier subtrees
    and new leaves. Asking for another node left of ``base`` raises KeyError.
    """
    computed: dict[tuple[int, int], bytes] = {}

    def get(level: int, index: int) -> bytes:
        if (index + 1) << level <= base:  # wholly old: one of the frontier's subtrees
            if index != (base >> level) - 1 or level not in frontier:
                raise KeyError((level, index))
            return frontier[level]
        if level == 0:
            return leaves[index - base]
        digest = computed.get((level, index))
        if digest is None:
            digest = node_hash(get(level - 1, 2 * index), get(level - 1, 2 * index + 1))
            computed[(level, index)] = digest
        return digest

    return get


def node_position(level: int, index: int) -> int:
    """The post-order position of perfect node ``(level, index)``, ``level >= 1``.

    The node is completed by appending leaf ``m = (index + 1)·2^level - 1``. Appending
    leaf ``i`` completes one node per trailing 1-bit of ``i``, so leaves ``0 … m-1``
    complete ``m - popcount(m)`` nodes before it, and leaf ``m`` completes levels
    ``1 … level`` in that order.
    """
    if level < 1 or index < 0:
        raise ValueError(f"({level}, {index}) is not a node above the leaves")
    last = ((index + 1) << level) - 1
    return last - last.bit_count() + level - 1


def _node_at(start: int, end: int) -> tuple[int, int]:
    """The coordinates of the tree node spanning leaves ``[start, end)``."""
    level = (end - start - 1).bit_length()
    return level, start >> level


def _node_hash_from(get: GetNode, node: tuple[int, int], size: int) -> bytes:
    """The hash of ``node`` in a tree of ``size``: one read if perfect, else a fold."""
    return subtree_hash(get, *node_range(*node, size))

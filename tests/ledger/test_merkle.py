"""Tests for the RFC 9162 §2.1 Merkle functions and the stored-tree helpers.

Known answers come from ``vectors/rfc6962.json`` (the Certificate Transparency reference
tree, sources named in the file); the rest are exhaustive loops and hypothesis properties.
"""

from __future__ import annotations

import doctest
import functools
import hashlib
import json
import math
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dangan.ledger import _tree, merkle
from dangan.ledger._tree import (
    append_nodes,
    consistency_nodes,
    consistency_proof_from,
    inclusion_nodes,
    inclusion_proof_from,
    node_range,
    perfect_subtrees,
    root_from,
    subtree_hash,
)
from dangan.ledger.merkle import (
    EMPTY_ROOT,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root,
    verify_consistency,
    verify_inclusion,
)

VECTORS = json.loads((Path(__file__).parent / "vectors" / "rfc6962.json").read_text())
KAT_LEAVES = [leaf_hash(bytes.fromhex(x)) for x in VECTORS["leaf_inputs"]]
KAT_INCLUSION = [(v["index"], v["size"], [bytes.fromhex(h) for h in v["path"]])
                 for v in VECTORS["inclusion"]]
KAT_CONSISTENCY = [(v["old_size"], v["new_size"], [bytes.fromhex(h) for h in v["proof"]])
                   for v in VECTORS["consistency"]]
KAT_ROOTS = [bytes.fromhex(h) for h in VECTORS["roots"]]

#: Size of the exhaustively checked trees, and of the tree hypothesis samples from.
EXHAUSTIVE = 300
SAMPLED = 2**11 + 123
OTHER_HASH = hashlib.sha256(b"not in the tree").digest()


def _leaves(n: int) -> list[bytes]:
    """Distinct leaf hashes for a test tree of ``n`` leaves."""
    return [leaf_hash(i.to_bytes(4, "big")) for i in range(n)]


class Store:
    """Perfect-subtree hashes persisted leaf by leaf through ``append_nodes``, as a ledger would."""

    def __init__(self, leaves: list[bytes]) -> None:
        self.leaves = leaves
        self.nodes: dict[tuple[int, int], bytes] = {}
        for size, leaf in enumerate(leaves):
            get, _ = self.reader(size)
            for level, index, digest in append_nodes(size, leaf, get):
                assert (level, index) not in self.nodes
                self.nodes[level, index] = digest

    def reader(self, size: int) -> tuple[Callable[[int, int], bytes], list[tuple[int, int]]]:
        """A ``get`` over the first ``size`` leaves that logs reads and refuses incomplete nodes."""
        reads: list[tuple[int, int]] = []

        def get(level: int, index: int) -> bytes:
            assert (index + 1) << level <= size, f"read incomplete node {level, index} at {size}"
            reads.append((level, index))
            return self.nodes[level, index]

        return get, reads


@functools.cache
def _store(n: int) -> Store:
    return Store(_leaves(n))


def _log2_bound(n: int) -> float:
    """The O(log n) read budget the stored-tree helpers must meet: 2·log2(n) + 2."""
    return 2 * math.log2(max(n, 1)) + 2


def _flip(data: bytes, bit: int) -> bytes:
    """``data`` with one bit inverted."""
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


# --- known answers ---------------------------------------------------------------------


def test_hash_primitives_match_the_vector_leaf_hashes() -> None:
    assert [h.hex() for h in KAT_LEAVES] == VECTORS["perfect_nodes"][0]
    assert leaf_hash(b"") == hashlib.sha256(b"\x00").digest()
    assert node_hash(b"a", b"b") == hashlib.sha256(b"\x01ab").digest()


def test_roots_match_the_vectors_for_every_size() -> None:
    assert EMPTY_ROOT == hashlib.sha256(b"").digest() == KAT_ROOTS[0]
    for n, expected in enumerate(KAT_ROOTS):
        assert root(KAT_LEAVES[:n]) == expected


@pytest.mark.parametrize(("index", "size", "path"), KAT_INCLUSION)
def test_inclusion_proofs_match_the_vectors(index: int, size: int, path: list[bytes]) -> None:
    assert inclusion_proof(KAT_LEAVES[:size], index) == path
    assert verify_inclusion(KAT_LEAVES[index], index, size, path, KAT_ROOTS[size])


@pytest.mark.parametrize(("old", "new", "proof"), KAT_CONSISTENCY)
def test_consistency_proofs_match_the_vectors(old: int, new: int, proof: list[bytes]) -> None:
    assert consistency_proof(KAT_LEAVES[:new], old) == proof
    assert verify_consistency(old, new, KAT_ROOTS[old], KAT_ROOTS[new], proof)


KAT_NODES = {
    (level, index): bytes.fromhex(h)
    for level, row in enumerate(VECTORS["perfect_nodes"])
    for index, h in enumerate(row)
}


def test_append_nodes_persists_exactly_the_vector_perfect_nodes() -> None:
    assert Store(KAT_LEAVES).nodes == KAT_NODES


def test_stored_tree_helpers_reproduce_the_vectors_from_the_vector_nodes() -> None:
    def get(level: int, index: int) -> bytes:
        return KAT_NODES[level, index]

    assert [root_from(get, n) for n in range(9)] == KAT_ROOTS
    for index, size, path in KAT_INCLUSION:
        assert inclusion_proof_from(get, index, size) == path
    for old, new, proof in KAT_CONSISTENCY:
        assert consistency_proof_from(get, old, new) == proof


def test_proof_nodes_name_the_vector_subtrees() -> None:
    # PATH(5, D[8]) = leaf 4, leaves 6..7, leaves 0..3; PROOF(6, D[7]) starts at leaves 4..5.
    assert inclusion_nodes(5, 8) == [(0, 4), (1, 3), (2, 0)]
    assert consistency_nodes(6, 7) == [(1, 2), (0, 6), (2, 0)]
    # PATH(1, D[5]) ends with the ephemeral right edge [4, 5); PATH(0, D[7]) with [4, 7).
    assert inclusion_nodes(1, 5)[-1] == (0, 4)
    assert inclusion_nodes(0, 7)[-1] == (2, 1) and node_range(2, 1, 7) == (4, 7)
    assert perfect_subtrees(4, 7) == [(1, 2), (0, 6)]
    assert perfect_subtrees(0, 13) == [(3, 0), (2, 2), (0, 12)]


def test_module_docstring_examples_run() -> None:
    for module in (merkle, _tree):
        result = doctest.testmod(module)
        assert result.failed == 0
    assert doctest.testmod(merkle).attempted >= 2


@pytest.mark.parametrize(("index", "size", "path"), KAT_INCLUSION)
def test_any_bit_flip_breaks_a_vector_inclusion_proof(
    index: int, size: int, path: list[bytes]
) -> None:
    leaf, top = KAT_LEAVES[index], KAT_ROOTS[size]
    for bit in range(256):
        assert not verify_inclusion(_flip(leaf, bit), index, size, path, top)
        assert not verify_inclusion(leaf, index, size, path, _flip(top, bit))
        for i in range(len(path)):
            bad = [*path[:i], _flip(path[i], bit), *path[i + 1:]]
            assert not verify_inclusion(leaf, index, size, bad, top)


@pytest.mark.parametrize(("old", "new", "proof"), KAT_CONSISTENCY)
def test_any_bit_flip_breaks_a_vector_consistency_proof(
    old: int, new: int, proof: list[bytes]
) -> None:
    old_root, new_root = KAT_ROOTS[old], KAT_ROOTS[new]
    for bit in range(256):
        assert not verify_consistency(old, new, _flip(old_root, bit), new_root, proof)
        assert not verify_consistency(old, new, old_root, _flip(new_root, bit), proof)
        for i in range(len(proof)):
            bad = [*proof[:i], _flip(proof[i], bit), *proof[i + 1:]]
            assert not verify_consistency(old, new, old_root, new_root, bad)


# --- exhaustive properties ---------------------------------------------------------------


def test_every_inclusion_proof_verifies_and_stored_proofs_agree() -> None:
    store = _store(EXHAUSTIVE)
    for n in range(1, EXHAUSTIVE + 1):
        leaves = store.leaves[:n]
        top = root(leaves)
        get, reads = store.reader(n)
        assert root_from(get, n) == top
        assert len(reads) <= _log2_bound(n)
        # The plain producer costs O(n) hashes a proof; above 160 leaves sample every 5th.
        plain_indices = range(n) if n <= 160 else {*range(0, n, 5), n - 1}
        for i in range(n):
            reads.clear()
            proof = inclusion_proof_from(get, i, n)
            assert len(reads) <= _log2_bound(n), (i, n, reads)
            assert verify_inclusion(leaves[i], i, n, proof, top), (i, n)
            if i in plain_indices:
                assert inclusion_proof(leaves, i) == proof, (i, n)


def test_every_consistency_proof_verifies_and_stored_proofs_agree() -> None:
    store = _store(EXHAUSTIVE)
    roots = [root(store.leaves[:n]) for n in range(151)]
    for n in range(1, 151):
        leaves = store.leaves[:n]
        get, reads = store.reader(n)
        for m in range(0, n + 1):
            reads.clear()
            proof = consistency_proof_from(get, m, n)
            assert len(reads) <= _log2_bound(n), (m, n, reads)
            assert consistency_proof(leaves, m) == proof, (m, n)
            assert verify_consistency(m, n, roots[m], roots[n], proof), (m, n)


def test_append_nodes_reads_only_the_left_siblings_it_completes() -> None:
    store = _store(EXHAUSTIVE)
    for n in range(EXHAUSTIVE):
        get, reads = store.reader(n)
        created = append_nodes(n, store.leaves[n], get)
        trailing_ones = (n ^ (n + 1)).bit_length() - 1
        assert len(reads) == trailing_ones <= math.log2(n + 1)
        assert [(level, index) for level, index, _ in created] == [
            (level, n >> level) for level in range(trailing_ones + 1)
        ]
        for level, index, digest in created:  # every created node is the MTH of its leaves
            start, end = node_range(level, index, n + 1)
            assert digest == root(store.leaves[start:end])


def test_inclusion_wrong_index_or_size_fails() -> None:
    # The Certificate Transparency verifier probes: index ± 1, index ^ 2, size · 2, size / 2.
    leaves = _leaves(129)
    for n in range(1, 129):
        top = root(leaves[:n])
        for i in range(n):
            proof = inclusion_proof(leaves[:n], i)
            for j, size in ((i - 1, n), (i + 1, n), (i ^ 2, n), (i, 2 * n), (i, n // 2)):
                assert not verify_inclusion(leaves[i], j, size, proof, top), (i, n, j, size)


def _turns(index: int, size: int) -> list[bool]:
    """Whether each PATH element is a right sibling, leaf side first (RFC 9162 §2.1.3.1)."""
    if size == 1:
        return []
    k = 1
    while 2 * k < size:
        k *= 2
    if index < k:
        return [*_turns(index, k), True]
    return [*_turns(index - k, size - k), False]


def test_inclusion_binds_the_size_only_through_the_shape_of_the_path() -> None:
    # A proof verifies under another size exactly when that size gives the leaf the same
    # path shape (e.g. leaf 0 of 5 and of 6); the size is bound by the signed checkpoint.
    leaves = _leaves(80)
    for n in range(1, 41):
        top = root(leaves[:n])
        for i in range(n):
            proof = inclusion_proof(leaves[:n], i)
            for other in range(i + 1, 2 * n + 1):
                expected = _turns(i, other) == _turns(i, n)
                assert verify_inclusion(leaves[i], i, other, proof, top) is expected


def test_inclusion_proofs_of_the_wrong_length_fail() -> None:
    leaves = _leaves(64)
    for n in range(1, 65):
        top = root(leaves[:n])
        for i in range(n):
            proof = inclusion_proof(leaves[:n], i)
            wrong = [proof + [OTHER_HASH], proof + [top], [OTHER_HASH, *proof], [top, *proof]]
            if proof:
                wrong += [proof[:-1], proof[1:], [*proof[:1], OTHER_HASH, *proof[1:]]]
            for bad in wrong:
                assert not verify_inclusion(leaves[i], i, n, bad, top), (i, n, len(bad))


def test_consistency_wrong_sizes_roots_or_lengths_fail() -> None:
    leaves = _leaves(129)
    roots = [root(leaves[:n]) for n in range(129)]
    for n in range(2, 129):
        for m in range(1, n):
            r1, r2 = roots[m], roots[n]
            proof = consistency_proof(leaves[:n], m)
            probes = [
                (m - 1, n, r1, r2, proof), (m + 1, n, r1, r2, proof),
                (m ^ 2, n, r1, r2, proof), (m, 2 * n, r1, r2, proof),
                (m, n // 2, r1, r2, proof), (m, n, r2, r1, proof), (m, n, r1, r2, []),
                (m, n, r1, r2, proof[:-1]), (m, n, r1, r2, proof + [OTHER_HASH]),
                (m, n, r1, r2, proof + [r1]), (m, n, r1, r2, proof + [r2]),
                (m, n, r1, r2, [OTHER_HASH, *proof]), (m, n, r1, r2, [r1, *proof]),
                (m, n, r1, r2, [r2, *proof]), (m, n, r1, r2, [proof[0], *proof]),
            ]
            for args in probes:
                assert not verify_consistency(*args), (m, n, args[:2])


# --- hypothesis properties over a larger stored tree -------------------------------------


@st.composite
def _index_in_tree(draw: st.DrawFn) -> tuple[int, int]:
    size = draw(st.integers(1, SAMPLED))
    return draw(st.integers(0, size - 1)), size


@settings(max_examples=150, deadline=None)
@given(_index_in_tree(), st.integers(0, 255), st.data())
def test_single_bit_flip_breaks_inclusion(
    case: tuple[int, int], bit: int, data: st.DataObject
) -> None:
    index, size = case
    store = _store(SAMPLED)
    leaves = store.leaves[:size]
    top = root(leaves)
    proof = inclusion_proof(leaves, index)
    get, reads = store.reader(size)
    assert inclusion_proof_from(get, index, size) == proof
    assert len(reads) <= _log2_bound(size)
    assert verify_inclusion(leaves[index], index, size, proof, top)
    target = data.draw(st.integers(-2, len(proof) - 1), label="target")
    leaf, bad_proof, bad_root = leaves[index], list(proof), top
    if target == -2:
        leaf = _flip(leaf, bit)
    elif target == -1:
        bad_root = _flip(top, bit)
    else:
        bad_proof[target] = _flip(proof[target], bit)
    assert not verify_inclusion(leaf, index, size, bad_proof, bad_root)


@settings(max_examples=150, deadline=None)
@given(st.integers(1, SAMPLED), st.data(), st.integers(0, 255))
def test_single_bit_flip_breaks_consistency(new: int, data: st.DataObject, bit: int) -> None:
    old = data.draw(st.integers(1, new), label="old")
    store = _store(SAMPLED)
    leaves = store.leaves[:new]
    old_root, new_root = root(leaves[:old]), root(leaves)
    proof = consistency_proof(leaves, old)
    get, reads = store.reader(new)
    assert consistency_proof_from(get, old, new) == proof
    assert len(reads) <= _log2_bound(new)
    reads.clear()
    assert root_from(get, new) == new_root and root_from(get, old) == old_root
    assert len(reads) <= 2 * _log2_bound(new)
    assert verify_consistency(old, new, old_root, new_root, proof)
    target = data.draw(st.integers(-2, len(proof) - 1), label="target")
    bad_proof = list(proof)
    if target == -2:
        old_root = _flip(old_root, bit)
    elif target == -1:
        new_root = _flip(new_root, bit)
    else:
        bad_proof[target] = _flip(proof[target], bit)
    assert not verify_consistency(old, new, old_root, new_root, bad_proof)


_JUNK = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(), st.text(max_size=40),
    st.binary(max_size=40), st.lists(st.binary(min_size=30, max_size=34), max_size=6),
    st.lists(st.one_of(st.none(), st.integers(), st.text()), max_size=3),
)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_verifiers_answer_false_on_junk_and_never_raise(data: st.DataObject) -> None:
    leaves = _leaves(11)
    good_inclusion = [leaves[6], 6, 11, inclusion_proof(leaves, 6), root(leaves)]
    good_consistency = [5, 11, root(leaves[:5]), root(leaves), consistency_proof(leaves, 5)]
    for good, verify in ((good_inclusion, verify_inclusion),
                         (good_consistency, verify_consistency)):
        args = list(good)
        slots = data.draw(st.sets(st.integers(0, 4), min_size=1), label="slots")
        for slot in slots:
            args[slot] = data.draw(_JUNK, label=f"arg {slot}")
        if args == good:
            continue
        assert verify(*args) is False


# --- edge cases and conventions ----------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        (KAT_LEAVES[0], 0, 0, [], EMPTY_ROOT),  # empty tree
        (KAT_LEAVES[0], -1, 8, [], KAT_ROOTS[8]),
        (KAT_LEAVES[0], 8, 8, [], KAT_ROOTS[8]),
        (KAT_LEAVES[1], True, 2, [KAT_LEAVES[0]], KAT_ROOTS[2]),  # bool is not an index
        (KAT_LEAVES[0], 0, True, [], KAT_LEAVES[0]),  # nor a size
        (KAT_LEAVES[0], 0, 1.0, [], KAT_LEAVES[0]),
        (KAT_LEAVES[0][:31], 0, 1, [], KAT_LEAVES[0][:31]),
        (KAT_LEAVES[0] + b"\0", 0, 1, [], KAT_LEAVES[0] + b"\0"),
        (bytearray(KAT_LEAVES[0]), 0, 1, [], KAT_LEAVES[0]),
        (KAT_LEAVES[0], 0, 1, None, KAT_LEAVES[0]),
        (KAT_LEAVES[0], 0, 1, b"", KAT_LEAVES[0]),  # bytes is not a list of hashes
        (KAT_LEAVES[0], 0, 2, [KAT_LEAVES[1][:31]], KAT_ROOTS[2]),
        (KAT_LEAVES[0], 0, 2, [KAT_LEAVES[1].hex()], KAT_ROOTS[2]),
        (KAT_LEAVES[0], 0, 2, iter([KAT_LEAVES[1]]), KAT_ROOTS[2]),  # not a Sequence
    ],
)
def test_malformed_inclusion_arguments_give_false(args: tuple) -> None:
    assert verify_inclusion(*args) is False


def test_a_single_leaf_tree_is_its_own_root() -> None:
    assert inclusion_proof(KAT_LEAVES[:1], 0) == []
    assert verify_inclusion(KAT_LEAVES[0], 0, 1, [], KAT_ROOTS[1])
    assert verify_inclusion(KAT_LEAVES[0], 0, 1, (), KAT_ROOTS[1])
    assert not verify_inclusion(KAT_LEAVES[0], 0, 1, [KAT_LEAVES[0]], KAT_ROOTS[1])


def test_consistency_from_the_empty_tree_is_an_empty_proof_from_the_empty_root() -> None:
    leaves = KAT_LEAVES
    assert consistency_proof(leaves, 0) == [] == consistency_proof([], 0)
    assert consistency_proof_from(_store(8).reader(8)[0], 0, 8) == []
    assert verify_consistency(0, 8, EMPTY_ROOT, KAT_ROOTS[8], [])
    assert verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    assert not verify_consistency(0, 0, EMPTY_ROOT, KAT_ROOTS[1], [])
    assert not verify_consistency(0, 8, KAT_ROOTS[1], KAT_ROOTS[8], [])
    assert not verify_consistency(0, 8, EMPTY_ROOT, KAT_ROOTS[8], [KAT_ROOTS[8]])


def test_consistency_of_equal_sizes_needs_equal_roots_and_no_proof() -> None:
    assert consistency_proof(KAT_LEAVES, 8) == []
    assert verify_consistency(5, 5, KAT_ROOTS[5], KAT_ROOTS[5], [])
    assert not verify_consistency(5, 5, KAT_ROOTS[5], KAT_ROOTS[6], [])
    assert not verify_consistency(5, 5, KAT_ROOTS[5], KAT_ROOTS[5], [KAT_ROOTS[5]])
    assert not verify_consistency(6, 5, KAT_ROOTS[6], KAT_ROOTS[5], [])  # time travel
    assert not verify_consistency(1, 2, KAT_ROOTS[1], KAT_ROOTS[2], [])  # empty proof


def test_producers_refuse_out_of_range_arguments() -> None:
    get = _store(8).reader(8)[0]
    for call in (
        lambda: inclusion_proof(KAT_LEAVES, 8),
        lambda: inclusion_proof(KAT_LEAVES, -1),
        lambda: inclusion_proof([], 0),
        lambda: consistency_proof(KAT_LEAVES, 9),
        lambda: consistency_proof(KAT_LEAVES, -1),
        lambda: inclusion_proof_from(get, 8, 8),
        lambda: consistency_proof_from(get, 5, 4),
        lambda: consistency_proof_from(get, -1, 4),
        lambda: subtree_hash(get, 2, 6),  # [2, 6) is not made of aligned perfect subtrees
        lambda: subtree_hash(get, 3, 2),
        lambda: append_nodes(8, b"raw entry, not a leaf hash", get),
        lambda: append_nodes(-1, KAT_LEAVES[0], get),
    ):
        with pytest.raises(ValueError):
            call()
    with pytest.raises(TypeError):
        inclusion_proof(KAT_LEAVES, 1.0)  # type: ignore[arg-type]


def test_subtree_hash_is_the_mth_of_any_aligned_range() -> None:
    store = _store(64)
    get = store.reader(64)[0]
    assert root_from(get, 0) == EMPTY_ROOT == subtree_hash(get, 5, 5)
    for start in range(64):
        for end in range(start + 1, 65):
            if start % (1 << ((end - start).bit_length() - 1)) == 0:
                assert subtree_hash(get, start, end) == root(store.leaves[start:end])

"""Proofs for just-appended entries, computed from the append instead of the stored tree."""

from __future__ import annotations

from dangan.ledger import merkle, tree

LEAVES = [merkle.leaf_hash(f"entry {i}".encode()) for i in range(70)]


def frontier_of(size: int) -> bytes:
    frontier: dict[int, bytes] = {}
    for i in range(size):
        tree.push(frontier, i, LEAVES[i])
    return tree.pack_frontier(frontier, size)


def test_every_new_leaf_of_every_append_gets_the_rfc_proof() -> None:
    for size in range(1, len(LEAVES) + 1):
        root = merkle.root(LEAVES[:size])
        for base in range(size):
            new = range(base, size)
            proofs = tree.run_proofs(frontier_of(base), base, LEAVES[base:size], list(new),
                                     size=size, root=root)
            assert proofs == [merkle.inclusion_proof(LEAVES[:size], i) for i in new], (base, size)


def test_anything_else_is_left_to_the_store() -> None:
    base, size = 21, 30
    frontier, leaves, root = frontier_of(base), LEAVES[base:size], merkle.root(LEAVES[:size])
    assert tree.run_proofs(frontier, base, leaves, [base], size=size, root=root) is not None
    # a root other than the tree's (the frontier or a leaf is not what was signed)
    assert tree.run_proofs(frontier, base, leaves, [base], size=size, root=b"\x00" * 32) is None
    wrong = frontier_of(base - 1)
    assert tree.run_proofs(wrong, base, leaves, [base], size=size, root=root) is None
    # the append does not end the tree, or the entry is not one of the append's
    assert tree.run_proofs(frontier, base, leaves[:-1], [base], size=size, root=root) is None
    assert tree.run_proofs(frontier, base, leaves, [base - 1], size=size, root=root) is None
    # a frontier that does not fit the size it claims
    assert tree.run_proofs(frontier[:-32], base, leaves, [base], size=size, root=root) is None

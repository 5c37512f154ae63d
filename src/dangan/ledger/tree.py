"""The stored Merkle tree: every perfect subtree hash, kept as leaves arrive.

Appends use the *frontier* — the hashes of the perfect subtrees along the right edge,
one per set bit of the tree size — so adding a leaf needs no reads at all. Each append
stores the perfect nodes above the leaves that it completes (on average one) at their
post-order positions (:func:`dangan.ledger._tree.node_position`), where they sit next to
each other; the leaf hashes themselves are the entries' ``leaf_hash``. Any inclusion or
consistency proof (RFC 9162 §2.1.3, §2.1.4) is answered with one query for O(log n)
nodes by primary key, never by re-reading the leaves.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence

from sqlalchemy import Connection, bindparam, literal_column, select, union_all

from dangan.db.direct import DirectStatement
from dangan.db.tables import ledger_entries, ledger_tree
from dangan.errors import NotFound
from dangan.ledger import _tree
from dangan.ledger.merkle import EMPTY_ROOT, HASH_SIZE, node_hash

Node = tuple[int, int, bytes]

_INSERT_NODES = DirectStatement(ledger_tree.insert())


def frontier_levels(size: int) -> list[int]:
    """Levels of the right-edge perfect subtrees of a tree of ``size``, largest first."""
    return [level for level in range(size.bit_length() - 1, -1, -1) if size >> level & 1]


def pack_frontier(frontier: dict[int, bytes], size: int) -> bytes:
    """The frontier as stored: its hashes concatenated, largest subtree first."""
    return b"".join(frontier[level] for level in frontier_levels(size))


def unpack_frontier(blob: bytes, size: int) -> dict[int, bytes]:
    """Inverse of :func:`pack_frontier`."""
    levels = frontier_levels(size)
    if len(blob) != HASH_SIZE * len(levels):
        raise ValueError(f"stored frontier does not fit a tree of size {size}")
    return {lvl: blob[i * HASH_SIZE : (i + 1) * HASH_SIZE] for i, lvl in enumerate(levels)}


def push(frontier: dict[int, bytes], size: int, leaf: bytes) -> list[Node]:
    """Append leaf hash ``leaf`` at position ``size``; update ``frontier`` in place.

    Returns the perfect nodes the append completes, level 0 first.
    """
    created = _tree.append_nodes(size, leaf, lambda level, _index: frontier[level])
    for level, _index, _digest in created[:-1]:
        frontier.pop(level, None)
    top_level, _index, top = created[-1]
    frontier[top_level] = top
    return created


def push_packed(blob: bytes, size: int, leaf: bytes) -> tuple[bytes, list[tuple[int, bytes]]]:
    """:func:`push` on the packed frontier, for appends: no dict, no levels to list.

    Leaf ``size`` merges with one right-edge subtree per trailing 1-bit of ``size``, the
    smallest ones, packed last. Returns the new packed frontier and the nodes above the
    leaves that the append completes, as ``(position, hash)`` for :func:`store_positioned`.
    """
    if len(blob) != HASH_SIZE * size.bit_count():
        raise ValueError(f"stored frontier does not fit a tree of size {size}")
    end, digest, completed = len(blob), leaf, []
    position = size - size.bit_count()  # nodes completed by the leaves before this one
    while size & 1:
        digest = node_hash(blob[end - HASH_SIZE : end], digest)
        completed.append((position, digest))
        end, size, position = end - HASH_SIZE, size >> 1, position + 1
    return blob[:end] + digest, completed


def frontier_root(frontier: dict[int, bytes]) -> bytes:
    """MTH of the whole tree from its frontier (RFC 9162 §2.1.1): fold right to left."""
    if not frontier:
        return EMPTY_ROOT
    levels = sorted(frontier)
    digest = frontier[levels[0]]
    for level in levels[1:]:
        digest = node_hash(frontier[level], digest)
    return digest


def store_nodes(conn: Connection, nodes: Iterable[Node]) -> None:
    """Insert freshly completed perfect nodes; leaves (level 0) are the entries' own hashes."""
    positioned = [(_tree.node_position(lvl, idx), h) for lvl, idx, h in nodes if lvl]
    store_positioned(conn, positioned)


def store_positioned(conn: Connection, nodes: Sequence[tuple[int, bytes]]) -> None:
    """Insert freshly completed nodes given as ``(position, hash)``."""
    if len(nodes) == 1:
        _INSERT_NODES.execute(conn, {"pos": nodes[0][0], "hash": nodes[0][1]})
    elif nodes:
        positions, hashes = zip(*nodes)
        _INSERT_NODES.execute_columns(conn, {"pos": positions, "hash": hashes})


@functools.lru_cache(maxsize=64)
def _fetch_statement(leaves: int, inner: int) -> DirectStatement:
    """SELECT of up to ``leaves`` leaf hashes and ``inner`` stored nodes by primary key.

    Rows are ``(0, seq, leaf_hash)`` and ``(1, pos, hash)``, in one round trip, on the
    driver's cursor (proofs are on the write path: every receipt and checkpoint needs
    one). Callers pad the key lists (with -1, which matches nothing) to a few lengths,
    so that a handful of shapes are compiled once rather than one per proof shape.
    """
    seq, pos = ledger_entries.c.seq, ledger_tree.c.pos
    return DirectStatement(
        union_all(
            select(literal_column("0"), seq, ledger_entries.c.leaf_hash).where(
                seq.in_([bindparam(f"s{i}") for i in range(leaves)])
            ),
            select(literal_column("1"), pos, ledger_tree.c.hash).where(
                pos.in_([bindparam(f"p{i}") for i in range(inner)])
            ),
        )
    )


def _padded(keys: list[int], multiple: int) -> list[int]:
    """``keys`` and then -1s, to a length that is a (non-zero) multiple of ``multiple``."""
    length = max(multiple, -(-len(keys) // multiple) * multiple)
    return keys + [-1] * (length - len(keys))


def _fetch(conn: Connection, coords: set[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
    if not coords:
        return {}
    seqs = _padded([index for level, index in coords if not level], 4)
    by_pos = {_tree.node_position(level, index): (level, index) for level, index in coords if level}
    positions = _padded(list(by_pos), 8)
    params = {f"s{i}": seq for i, seq in enumerate(seqs)}
    params.update((f"p{i}", position) for i, position in enumerate(positions))
    rows = _fetch_statement(len(seqs), len(positions)).execute(conn, params)
    found = {by_pos[key] if inner else (0, key): bytes(digest) for inner, key, digest in rows}
    if len(found) != len(coords):
        missing = sorted(coords - found.keys())[:3]
        raise NotFound(f"the ledger tree lacks nodes {missing}")
    return found


def _needed(nodes: Sequence[tuple[int, int]], size: int) -> set[tuple[int, int]]:
    """The stored nodes whose hashes give those of ``nodes`` in a tree of ``size``."""
    coords: set[tuple[int, int]] = set()
    for level, index in nodes:
        coords.update(_tree.perfect_subtrees(*_tree.node_range(level, index, size)))
    return coords


def _check_size(size: int, head_size: int) -> None:
    if not 0 <= size <= head_size:
        raise NotFound(f"the ledger has {head_size} entries, not {size}")


def root_at(conn: Connection, size: int, *, head_size: int) -> bytes:
    """MTH of the first ``size`` entries."""
    _check_size(size, head_size)
    if size == 0:
        return EMPTY_ROOT
    nodes = _fetch(conn, set(_tree.perfect_subtrees(0, size)))
    return _tree.root_from(lambda lvl, idx: nodes[(lvl, idx)], size)


def inclusion_proof_at(conn: Connection, index: int, size: int, *, head_size: int) -> list[bytes]:
    """RFC 9162 §2.1.3.1 inclusion proof of leaf ``index`` in the tree of ``size``."""
    return inclusion_proofs_at(conn, [index], size, head_size=head_size)[0]


def inclusion_proofs_at(
    conn: Connection, indices: Sequence[int], size: int, *, head_size: int
) -> list[list[bytes]]:
    """:func:`inclusion_proof_at` for each of ``indices``, with one query for all of them.

    Proofs of neighbouring leaves share most of their nodes (a batch of receipts for the
    entries one transaction appended differ only near the right edge of the tree).
    """
    _check_size(size, head_size)
    paths = []
    for index in indices:
        if not 0 <= index < size:
            raise NotFound(f"entry {index} is not in a tree of size {size}")
        paths.append(_tree.inclusion_nodes(index, size))
    nodes = _fetch(conn, _needed([node for path in paths for node in path], size))

    def get(level: int, index: int) -> bytes:
        return nodes[(level, index)]

    return [_tree.inclusion_proof_from(get, index, size) for index in indices]


def run_proofs(
    base_frontier: bytes,
    base: int,
    leaves: Sequence[bytes],
    indices: Sequence[int],
    *,
    size: int,
    root: bytes,
) -> list[list[bytes]] | None:
    """Inclusion proofs of ``indices`` in the tree of ``size`` whose last leaves were just
    appended, computed without reading the stored tree; ``None`` when that is not possible.

    ``leaves`` are the hashes of leaves ``base`` onwards and ``base_frontier`` the packed
    frontier of the tree of the ``base`` leaves before them (a
    :class:`dangan.ledger.log.AppendedRun`). They must make up the whole tree of ``size``,
    whose MTH must be ``root`` (the signed checkpoint's), else ``None``: the caller then
    reads the proofs from the store.
    """
    if base + len(leaves) != size or not all(base <= index < size for index in indices):
        return None
    try:
        get = _tree.grown_tree(unpack_frontier(base_frontier, base), base, leaves)
        if _tree.root_from(get, size) != root:
            return None
        return [_tree.inclusion_proof_from(get, index, size) for index in indices]
    except (KeyError, ValueError):
        return None


def consistency_proof_at(conn: Connection, old: int, new: int, *, head_size: int) -> list[bytes]:
    """RFC 9162 §2.1.4.1 consistency proof between the trees of ``old`` and ``new`` entries."""
    _check_size(new, head_size)
    if not 0 <= old <= new:
        raise NotFound(f"no consistency proof from size {old} to size {new}")
    nodes = _fetch(conn, _needed(_tree.consistency_nodes(old, new), new))
    return _tree.consistency_proof_from(lambda lvl, idx: nodes[(lvl, idx)], old, new)

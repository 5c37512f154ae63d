"""The stored Merkle tree: every perfect subtree hash, kept as leaves arrive.

Appends use the *frontier* — the hashes of the perfect subtrees along the right edge,
one per set bit of the tree size — so adding a leaf needs no reads at all. Each append
stores the perfect nodes it completes (the leaf itself at level 0, and on average one
parent), which lets any inclusion or consistency proof (RFC 9162 §2.1.3, §2.1.4) be
answered with one query for O(log n) nodes, never by re-reading the leaves.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Dialect, Select, Table, and_, bindparam, or_, select

from dangan.db.tables import ledger_nodes
from dangan.errors import NotFound
from dangan.ledger import _tree
from dangan.ledger.merkle import EMPTY_ROOT, HASH_SIZE, node_hash

Node = tuple[int, int, bytes]


class _BulkInsert:
    """An ``INSERT`` of many rows given column by column, run with ``exec_driver_sql``.

    ``Connection.execute`` prepares executemany parameters row by row in Python, which
    cost batched appends more than SQLite's own work (they insert about three rows per
    entry). Here the Core statement is compiled once per dialect, each column passes
    through its type's bind processor (the one SQLAlchemy itself would apply) in one go,
    and the rows are zipped in C. Execution, transactions and error wrapping stay
    SQLAlchemy's.
    """

    def __init__(self, table: Table) -> None:
        self._statement = table.insert()
        self._compiled: weakref.WeakKeyDictionary[Dialect, _CompiledInsert] = (
            weakref.WeakKeyDictionary()
        )

    def execute(
        self,
        conn: Connection,
        columns: Mapping[str, Sequence[Any]],
        *,
        constants: Mapping[str, Any] | None = None,
    ) -> None:
        """Insert one row per position of the (equally long) ``columns``; ``constants``
        give columns whose value is the same in every row."""
        compiled = self._compiled.get(conn.dialect)
        if compiled is None:
            compiled = self._compiled[conn.dialect] = _CompiledInsert(self._statement, conn.dialect)
        count = len(next(iter(columns.values())))
        if count:
            conn.exec_driver_sql(compiled.sql, compiled.rows(count, columns, constants or {}))


class _CompiledInsert:
    """An INSERT compiled for one dialect: its SQL, parameter names and bind processors."""

    def __init__(self, statement: Any, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        self.sql: str = compiled.string
        self.positional: bool = compiled.positional
        self.names: list[str] = list(compiled.positiontup or compiled.binds)
        self.processors: dict[str, Callable[[Any], Any]] = {}
        for name in self.names:
            process = compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
            if process is not None:
                self.processors[name] = process

    def rows(
        self, count: int, columns: Mapping[str, Sequence[Any]], constants: Mapping[str, Any]
    ) -> list[Any]:
        """DB-API parameters: tuples for positional paramstyles, else dicts."""
        values = []
        for name in self.names:
            process = self.processors.get(name)
            if name in constants:
                value = constants[name]
                values.append([value if process is None else process(value)] * count)
            else:
                column = columns[name]
                values.append(column if process is None else list(map(process, column)))
        if self.positional:
            return list(zip(*values, strict=True))
        return [dict(zip(self.names, row)) for row in zip(*values, strict=True)]


_INSERT_NODES = _BulkInsert(ledger_nodes)


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
    """Insert freshly completed perfect nodes."""
    levels, indices, hashes = tuple(zip(*nodes)) or ((), (), ())
    _INSERT_NODES.execute(conn, {"level": levels, "idx": indices, "hash": hashes})


@functools.lru_cache(maxsize=256)
def _fetch_statement(count: int) -> Select[Any]:
    """SELECT of ``count`` nodes by primary key, as ``(level = ? AND idx = ?) OR …``.

    Not ``(level, idx) IN (…)``: SQLite plans a row-value IN list as a full table scan,
    while each OR term is a primary-key search on both SQLite and PostgreSQL. Cached per
    count so that SQLAlchemy compiles each shape once.
    """
    level, idx = ledger_nodes.c.level, ledger_nodes.c.idx
    return select(level, idx, ledger_nodes.c.hash).where(
        or_(*(and_(level == bindparam(f"l{i}"), idx == bindparam(f"i{i}")) for i in range(count)))
    )


def _fetch(conn: Connection, coords: set[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
    if not coords:
        return {}
    params: dict[str, int] = {}
    for i, (level, index) in enumerate(coords):
        params[f"l{i}"], params[f"i{i}"] = level, index
    rows = conn.execute(_fetch_statement(len(coords)), params)
    found = {(level, index): bytes(digest) for level, index, digest in rows}
    if len(found) != len(coords):
        missing = sorted(coords - found.keys())[:3]
        raise NotFound(f"the ledger tree lacks nodes {missing}")
    return found


def _needed(nodes: Sequence[tuple[int, int]], size: int) -> set[tuple[int, int]]:
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
    _check_size(size, head_size)
    if not 0 <= index < size:
        raise NotFound(f"entry {index} is not in a tree of size {size}")
    nodes = _fetch(conn, _needed(_tree.inclusion_nodes(index, size), size))
    return _tree.inclusion_proof_from(lambda lvl, idx: nodes[(lvl, idx)], index, size)


def consistency_proof_at(conn: Connection, old: int, new: int, *, head_size: int) -> list[bytes]:
    """RFC 9162 §2.1.4.1 consistency proof between the trees of ``old`` and ``new`` entries."""
    _check_size(new, head_size)
    if not 0 <= old <= new:
        raise NotFound(f"no consistency proof from size {old} to size {new}")
    nodes = _fetch(conn, _needed(_tree.consistency_nodes(old, new), new))
    return _tree.consistency_proof_from(lambda lvl, idx: nodes[(lvl, idx)], old, new)

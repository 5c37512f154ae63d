"""Where the stored tree keeps its nodes: post-order positions, each append's side by side."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, select

from dangan.db import write_transaction
from dangan.db.tables import ledger_tree
from dangan.ledger import _tree, merkle, tree
from dangan.ledger.log import NewEvent, append_events, read_head

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def test_positions_follow_the_order_appends_complete_nodes() -> None:
    order = []
    for size in range(1000):
        created = _tree.append_nodes(size, b"\x00" * 32, lambda _level, _index: b"\x00" * 32)
        order += [_tree.node_position(level, index) for level, index, _ in created[1:]]
    assert order == list(range(len(order)))  # consecutive per append, no gaps, no reuse
    assert len(order) == 1000 - (1000).bit_count()


@pytest.mark.parametrize(("level", "index"), [(0, 0), (-1, 3), (2, -1)])
def test_leaves_have_no_position(level: int, index: int) -> None:
    with pytest.raises(ValueError):
        _tree.node_position(level, index)


def test_packed_push_matches_push() -> None:
    frontier: dict[int, bytes] = {}
    packed = b""
    for size in range(300):
        leaf = merkle.leaf_hash(size.to_bytes(4, "big"))
        expected = [
            (_tree.node_position(level, index), digest)
            for level, index, digest in tree.push(frontier, size, leaf)[1:]
        ]
        packed, completed = tree.push_packed(packed, size, leaf)
        assert completed == expected
        assert packed == tree.pack_frontier(frontier, size + 1)
    with pytest.raises(ValueError):
        tree.push_packed(packed[:-1], 300, leaf)


def test_the_store_holds_each_node_above_the_leaves_once(engine: Engine) -> None:
    size = 0
    for batch in (1, 1, 5, 1, 17, 3, 1, 1, 40):
        with write_transaction(engine) as conn:
            append_events(
                conn, [NewEvent("test.event", "t", {"i": size + i}) for i in range(batch)], now=NOW
            )
        size += batch
    with engine.connect() as conn:
        positions = conn.execute(select(ledger_tree.c.pos).order_by(ledger_tree.c.pos)).scalars()
        assert list(positions) == list(range(size - size.bit_count()))
        assert read_head(conn).size == size

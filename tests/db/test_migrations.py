"""Migrations convert existing data: the same log before and after, on every backend."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy import Engine

from dangan.db import create_db_engine, upgrade
from dangan.db.migrate import alembic_config
from dangan.errors import IntegrityError
from dangan.ledger import merkle, tree
from dangan.ledger.log import GENESIS_PREV, encode_event, read_head
from dangan.ledger.tree import consistency_proof_at, inclusion_proof_at
from dangan.ledger.verify import verify_ledger

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
SIZE = 37

# The tables as revision 0003 left them.
entries_0003 = sa.table(
    "ledger_entries",
    sa.column("seq", sa.BigInteger()),
    sa.column("kind", sa.String()),
    sa.column("body", sa.LargeBinary()),
    sa.column("leaf_hash", sa.LargeBinary()),
    sa.column("prev_hash", sa.LargeBinary()),
    sa.column("created_at", sa.DateTime(timezone=True)),
)
nodes_0003 = sa.table(
    "ledger_nodes",
    sa.column("level", sa.SmallInteger()),
    sa.column("idx", sa.BigInteger()),
    sa.column("hash", sa.LargeBinary()),
)
head_0003 = sa.table(
    "ledger_head",
    sa.column("id", sa.Integer()),
    sa.column("size", sa.BigInteger()),
    sa.column("last_hash", sa.LargeBinary()),
    sa.column("frontier", sa.LargeBinary()),
)


def fill_0003(engine: Engine, size: int) -> tuple[list[bytes], list[tuple[int, int, bytes]]]:
    """A log of ``size`` entries written the way revision 0003's code stored it."""
    frontier: dict[int, bytes] = {}
    entries, nodes, leaves, prev = [], [], [], GENESIS_PREV
    for seq in range(size):
        body = encode_event(seq=seq, prev_hash=prev, kind="test.event", actor="t",
                            subject={"i": seq}, at=NOW)
        digest = merkle.leaf_hash(body)
        entries.append({"seq": seq, "kind": "test.event", "body": body, "leaf_hash": digest,
                        "prev_hash": prev, "created_at": NOW})
        nodes.extend(tree.push(frontier, seq, digest))
        leaves.append(digest)
        prev = digest
    with engine.begin() as conn:
        conn.execute(entries_0003.insert(), entries)
        conn.execute(nodes_0003.insert(), [{"level": l, "idx": i, "hash": h} for l, i, h in nodes])
        conn.execute(
            head_0003.update().where(head_0003.c.id == 1),
            {"size": size, "last_hash": prev, "frontier": tree.pack_frontier(frontier, size)},
        )
    return leaves, nodes


def stored_0003_nodes(engine: Engine) -> list[tuple[int, int, bytes]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(nodes_0003).order_by(nodes_0003.c.level, nodes_0003.c.idx))
        return [(r.level, r.idx, bytes(r.hash)) for r in rows]


def test_0004_keeps_the_tree_and_downgrades_to_the_same_rows(database_url: str) -> None:
    engine = create_db_engine(database_url)
    try:
        upgrade(engine, "0003")
        leaves, nodes = fill_0003(engine, SIZE)
        before = stored_0003_nodes(engine)
        assert before == sorted(nodes)

        upgrade(engine)
        with engine.connect() as conn:
            assert verify_ledger(conn) == SIZE
            head = read_head(conn)
            assert head.size == SIZE and head.root == merkle.root(leaves)
            for index in (0, 1, 17, SIZE - 1):
                proof = inclusion_proof_at(conn, index, SIZE, head_size=SIZE)
                assert proof == merkle.inclusion_proof(leaves, index)
            for old in (1, 6, 16, 32, 36):
                proof = consistency_proof_at(conn, old, SIZE, head_size=SIZE)
                assert proof == merkle.consistency_proof(leaves, old)

        command.downgrade(alembic_config(engine), "0003")
        assert stored_0003_nodes(engine) == before
    finally:
        engine.dispose()


def test_0004_carries_a_damaged_node_over_for_the_audit(database_url: str) -> None:
    engine = create_db_engine(database_url)
    try:
        upgrade(engine, "0003")
        fill_0003(engine, SIZE)
        with engine.begin() as conn:
            conn.execute(
                nodes_0003.update()
                .where(nodes_0003.c.level == 2, nodes_0003.c.idx == 3)
                .values(hash=b"\x42" * 32)
            )
        upgrade(engine)
        with engine.connect() as conn, pytest.raises(IntegrityError) as caught:
            verify_ledger(conn)
        assert caught.value.extra.get("node") == [2, 3]
    finally:
        engine.dispose()

"""ledger tree nodes keyed by post-order position, leaves not stored twice

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 07:30:00

``ledger_nodes`` (level, idx, hash) becomes ``ledger_tree`` (pos, hash): each node above
the leaves is stored at its post-order position, the order in which appends complete
them, so one append writes its nodes side by side; level 0 is dropped, since the leaf
hashes are ``ledger_entries.leaf_hash`` already. Rows are converted, not recomputed, so a
damaged node stays damaged for ``dangan verify-ledger`` to find. The position formula is
written out here (as in ``dangan.ledger._tree.node_position``) so that this revision
never changes with the code.
"""

from __future__ import annotations

from collections.abc import Iterator

import sqlalchemy as sa
from alembic import op


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

_BATCH = 10_000

_old = sa.table(
    "ledger_nodes",
    sa.column("level", sa.SmallInteger()),
    sa.column("idx", sa.BigInteger()),
    sa.column("hash", sa.LargeBinary()),
)
_new = sa.table(
    "ledger_tree",
    sa.column("pos", sa.BigInteger()),
    sa.column("hash", sa.LargeBinary()),
)


def _position(level: int, idx: int) -> int:
    """Post-order position of node (level >= 1, idx): leaves before the one completing
    it complete ``m - popcount(m)`` nodes, and it completes levels 1 … level in order."""
    last = ((idx + 1) << level) - 1
    return last - bin(last).count("1") + level - 1


def _nodes_in_order() -> Iterator[tuple[int, int, int]]:
    """(pos, level, idx) of every node above the leaves, in position order."""
    pos, leaf = 0, 0
    while True:
        level = 1
        while leaf >> (level - 1) & 1:  # one node per trailing 1-bit of the leaf index
            yield pos, level, leaf >> level
            pos, level = pos + 1, level + 1
        leaf += 1


def upgrade() -> None:
    op.create_table('ledger_tree',
    sa.Column('pos', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=False, nullable=False),
    sa.Column('hash', sa.LargeBinary(length=32), nullable=False),
    sa.PrimaryKeyConstraint('pos', name=op.f('pk_ledger_tree'))
    )
    conn = op.get_bind()
    top = conn.execute(sa.select(sa.func.max(_old.c.level))).scalar() or 0
    for level in range(1, top + 1):
        after = -1
        while True:
            rows = conn.execute(
                sa.select(_old.c.idx, _old.c.hash)
                .where(_old.c.level == level, _old.c.idx > after)
                .order_by(_old.c.idx)
                .limit(_BATCH)
            ).all()
            if not rows:
                break
            conn.execute(
                _new.insert(),
                [{"pos": _position(level, idx), "hash": digest} for idx, digest in rows],
            )
            after = rows[-1].idx
    op.drop_table('ledger_nodes')


def downgrade() -> None:
    op.create_table('ledger_nodes',
    sa.Column('level', sa.SmallInteger(), autoincrement=False, nullable=False),
    sa.Column('idx', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('hash', sa.LargeBinary(length=32), nullable=False),
    sa.PrimaryKeyConstraint('level', 'idx', name=op.f('pk_ledger_nodes'))
    )
    conn = op.get_bind()
    conn.execute(sa.text(
        "INSERT INTO ledger_nodes (level, idx, hash) SELECT 0, seq, leaf_hash FROM ledger_entries"
    ))
    order = _nodes_in_order()
    expected = next(order)
    after = -1
    while True:
        rows = conn.execute(
            sa.select(_new.c.pos, _new.c.hash)
            .where(_new.c.pos > after)
            .order_by(_new.c.pos)
            .limit(_BATCH)
        ).all()
        if not rows:
            break
        batch = []
        for pos, digest in rows:
            while expected[0] < pos:
                expected = next(order)
            batch.append({"level": expected[1], "idx": expected[2], "hash": digest})
        conn.execute(_old.insert(), batch)
        after = rows[-1].pos
    op.drop_table('ledger_tree')

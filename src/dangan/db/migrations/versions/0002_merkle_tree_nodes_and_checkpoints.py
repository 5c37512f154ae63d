"""merkle tree nodes and checkpoints

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 04:05:44.522771
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('checkpoints',
    sa.Column('size', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('root', sa.LargeBinary(length=32), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('size', name=op.f('pk_checkpoints'))
    )
    op.create_table('ledger_nodes',
    sa.Column('level', sa.SmallInteger(), autoincrement=False, nullable=False),
    sa.Column('idx', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('hash', sa.LargeBinary(length=32), nullable=False),
    sa.PrimaryKeyConstraint('level', 'idx', name=op.f('pk_ledger_nodes'))
    )
    with op.batch_alter_table('ledger_head', schema=None) as batch_op:
        batch_op.add_column(sa.Column('frontier', sa.LargeBinary(), nullable=True))
    _backfill_tree(op.get_bind())
    with op.batch_alter_table('ledger_head', schema=None) as batch_op:
        batch_op.alter_column('frontier', existing_type=sa.LargeBinary(), nullable=False)


def _backfill_tree(conn: sa.Connection) -> None:
    """Build the tree nodes and frontier for entries appended before this revision."""
    from dangan.ledger import tree

    frontier: dict[int, bytes] = {}
    size = 0
    rows = conn.execute(sa.text("SELECT seq, leaf_hash FROM ledger_entries ORDER BY seq"))
    for row in rows:
        assert row.seq == size, "ledger has a gap; run dangan verify-ledger"
        nodes = tree.push(frontier, size, bytes(row.leaf_hash))
        conn.execute(
            sa.text("INSERT INTO ledger_nodes (level, idx, hash) VALUES (:level, :idx, :hash)"),
            [{"level": lvl, "idx": idx, "hash": digest} for lvl, idx, digest in nodes],
        )
        size += 1
    conn.execute(
        sa.text("UPDATE ledger_head SET frontier = :f WHERE id = 1"),
        {"f": tree.pack_frontier(frontier, size)},
    )



def downgrade() -> None:
    with op.batch_alter_table('ledger_head', schema=None) as batch_op:
        batch_op.drop_column('frontier')

    op.drop_table('ledger_nodes')
    op.drop_table('checkpoints')

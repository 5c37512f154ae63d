"""checkpoint timestamps

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 04:45:29.701488
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('checkpoint_timestamps',
    sa.Column('size', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('response', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['size'], ['checkpoints.size'], name=op.f('fk_checkpoint_timestamps_size_checkpoints')),
    sa.PrimaryKeyConstraint('size', name=op.f('pk_checkpoint_timestamps'))
    )


def downgrade() -> None:
    op.drop_table('checkpoint_timestamps')

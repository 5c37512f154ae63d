"""seal registry, status history and usage log

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 06:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('seals',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('organisation', sa.String(length=200), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('image_sha256', sa.String(length=64), nullable=False),
    sa.Column('certificate', sa.LargeBinary(), nullable=False),
    sa.Column('certificate_sha256', sa.String(length=64), nullable=False),
    sa.Column('key_source', sa.Text(), nullable=False),
    sa.Column('created_by', sa.String(length=36), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ledger_seq', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['image_sha256'], ['objects.sha256'], name=op.f('fk_seals_image_sha256_objects')),
    sa.ForeignKeyConstraint(['created_by'], ['clients.id'], name=op.f('fk_seals_created_by_clients')),
    sa.ForeignKeyConstraint(['ledger_seq'], ['ledger_entries.seq'], name=op.f('fk_seals_ledger_seq_ledger_entries')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_seals'))
    )
    op.create_index('ix_seals_organisation_id', 'seals', ['organisation', 'id'], unique=False)
    op.create_table('seal_status_changes',
    sa.Column('ledger_seq', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('seal_id', sa.String(length=36), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('changed_by', sa.String(length=36), nullable=False),
    sa.Column('changed_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['ledger_seq'], ['ledger_entries.seq'], name=op.f('fk_seal_status_changes_ledger_seq_ledger_entries')),
    sa.ForeignKeyConstraint(['seal_id'], ['seals.id'], name=op.f('fk_seal_status_changes_seal_id_seals')),
    sa.ForeignKeyConstraint(['changed_by'], ['clients.id'], name=op.f('fk_seal_status_changes_changed_by_clients')),
    sa.PrimaryKeyConstraint('ledger_seq', name=op.f('pk_seal_status_changes'))
    )
    op.create_index('ix_seal_status_changes_seal_id_ledger_seq', 'seal_status_changes', ['seal_id', 'ledger_seq'], unique=False)
    op.create_table('seal_usage',
    sa.Column('ledger_seq', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('seal_id', sa.String(length=36), nullable=False),
    sa.Column('document_id', sa.String(length=36), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('client_id', sa.String(length=36), nullable=False),
    sa.Column('operator', sa.String(length=200), nullable=True),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['ledger_seq'], ['ledger_entries.seq'], name=op.f('fk_seal_usage_ledger_seq_ledger_entries')),
    sa.ForeignKeyConstraint(['seal_id'], ['seals.id'], name=op.f('fk_seal_usage_seal_id_seals')),
    sa.ForeignKeyConstraint(['document_id'], ['documents.id'], name=op.f('fk_seal_usage_document_id_documents')),
    sa.ForeignKeyConstraint(['client_id'], ['clients.id'], name=op.f('fk_seal_usage_client_id_clients')),
    sa.PrimaryKeyConstraint('ledger_seq', name=op.f('pk_seal_usage'))
    )
    op.create_index('ix_seal_usage_seal_id_ledger_seq', 'seal_usage', ['seal_id', 'ledger_seq'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_seal_usage_seal_id_ledger_seq', table_name='seal_usage')
    op.drop_table('seal_usage')
    op.drop_index('ix_seal_status_changes_seal_id_ledger_seq', table_name='seal_status_changes')
    op.drop_table('seal_status_changes')
    op.drop_index('ix_seals_organisation_id', table_name='seals')
    op.drop_table('seals')

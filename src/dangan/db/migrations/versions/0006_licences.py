"""licence types, licences and their status history

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 09:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('licence_types',
    sa.Column('code', sa.String(length=20), nullable=False),
    sa.Column('name_zh', sa.String(length=200), nullable=False),
    sa.Column('name_en', sa.String(length=200), nullable=False),
    sa.Column('organisation', sa.String(length=200), nullable=False),
    sa.Column('issuer_uscc', sa.String(length=18), nullable=False),
    sa.Column('seal_id', sa.String(length=36), nullable=False),
    sa.Column('definition', sa.Text(), nullable=False),
    sa.Column('created_by', sa.String(length=36), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ledger_seq', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['seal_id'], ['seals.id'], name=op.f('fk_licence_types_seal_id_seals')),
    sa.ForeignKeyConstraint(['created_by'], ['clients.id'], name=op.f('fk_licence_types_created_by_clients')),
    sa.ForeignKeyConstraint(['ledger_seq'], ['ledger_entries.seq'], name=op.f('fk_licence_types_ledger_seq_ledger_entries')),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_licence_types'))
    )
    op.create_table('licences',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('identifier', sa.String(length=120), nullable=False),
    sa.Column('type_code', sa.String(length=20), nullable=False),
    sa.Column('organisation', sa.String(length=200), nullable=False),
    sa.Column('holder_name', sa.String(length=200), nullable=False),
    sa.Column('holder_id_type', sa.String(length=32), nullable=False),
    sa.Column('holder_id_masked', sa.String(length=64), nullable=False),
    sa.Column('holder_key', sa.String(length=64), nullable=False),
    sa.Column('fields', sa.Text(), nullable=False),
    sa.Column('valid_from', sa.String(length=10), nullable=False),
    sa.Column('valid_until', sa.String(length=10), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('document_id', sa.String(length=36), nullable=False),
    sa.Column('pdf_sha256', sa.String(length=64), nullable=False),
    sa.Column('token', sa.Text(), nullable=False),
    sa.Column('issued_by', sa.String(length=36), nullable=False),
    sa.Column('issued_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ledger_seq', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['type_code'], ['licence_types.code'], name=op.f('fk_licences_type_code_licence_types')),
    sa.ForeignKeyConstraint(['document_id'], ['documents.id'], name=op.f('fk_licences_document_id_documents')),
    sa.ForeignKeyConstraint(['issued_by'], ['clients.id'], name=op.f('fk_licences_issued_by_clients')),
    sa.ForeignKeyConstraint(['ledger_seq'], ['ledger_entries.seq'], name=op.f('fk_licences_ledger_seq_ledger_entries')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_licences')),
    sa.UniqueConstraint('identifier', name=op.f('uq_licences_identifier'))
    )
    op.create_index('ix_licences_holder_key', 'licences', ['holder_key'], unique=False)
    op.create_index('ix_licences_status_valid_until', 'licences', ['status', 'valid_until'], unique=False)
    op.create_table('licence_status_changes',
    sa.Column('ledger_seq', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('licence_id', sa.String(length=36), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('reason_code', sa.String(length=32), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('changed_by', sa.String(length=36), nullable=False),
    sa.Column('changed_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['ledger_seq'], ['ledger_entries.seq'], name=op.f('fk_licence_status_changes_ledger_seq_ledger_entries')),
    sa.ForeignKeyConstraint(['licence_id'], ['licences.id'], name=op.f('fk_licence_status_changes_licence_id_licences')),
    sa.PrimaryKeyConstraint('ledger_seq', name=op.f('pk_licence_status_changes'))
    )
    op.create_index('ix_licence_status_changes_licence_id_ledger_seq', 'licence_status_changes', ['licence_id', 'ledger_seq'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_licence_status_changes_licence_id_ledger_seq', table_name='licence_status_changes')
    op.drop_table('licence_status_changes')
    op.drop_index('ix_licences_status_valid_until', table_name='licences')
    op.drop_index('ix_licences_holder_key', table_name='licences')
    op.drop_table('licences')
    op.drop_table('licence_types')

"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-28 03:44:13.101808
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('clients',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('organisation', sa.String(length=200), nullable=False),
    sa.Column('scopes', sa.Text(), nullable=False),
    sa.Column('key_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('key_prefix', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_clients')),
    sa.UniqueConstraint('key_hash', name=op.f('uq_clients_key_hash'))
    )
    op.create_table('ledger_entries',
    sa.Column('seq', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('kind', sa.String(length=64), nullable=False),
    sa.Column('body', sa.LargeBinary(), nullable=False),
    sa.Column('leaf_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('prev_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('seq', name=op.f('pk_ledger_entries')),
    sa.UniqueConstraint('leaf_hash', name=op.f('uq_ledger_entries_leaf_hash'))
    )
    op.create_table('ledger_head',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('last_hash', sa.LargeBinary(length=32), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_head'))
    )
    # The empty log: size 0, and the chain's "previous hash" of entry 0 is 32 zero bytes.
    op.execute(
        sa.text("INSERT INTO ledger_head (id, size, last_hash) VALUES (1, 0, :h)").bindparams(
            sa.bindparam("h", b"\x00" * 32, type_=sa.LargeBinary)
        )
    )
    op.create_table('objects',
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('sha256', name=op.f('pk_objects'))
    )
    op.create_table('documents',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('title', sa.Text(), nullable=False),
    sa.Column('kind', sa.String(length=100), nullable=False),
    sa.Column('organisation', sa.String(length=200), nullable=False),
    sa.Column('external_id', sa.String(length=200), nullable=True),
    sa.Column('case_ref', sa.String(length=200), nullable=True),
    sa.Column('created_by', sa.String(length=36), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('current_version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['created_by'], ['clients.id'], name=op.f('fk_documents_created_by_clients')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_documents'))
    )
    with op.batch_alter_table('documents', schema=None) as batch_op:
        batch_op.create_index('ix_documents_case_ref', ['case_ref'], unique=False)
        batch_op.create_index('ix_documents_external_id', ['external_id'], unique=False)
        batch_op.create_index('ix_documents_organisation_id', ['organisation', 'id'], unique=False)

    op.create_table('idempotency_keys',
    sa.Column('client_id', sa.String(length=36), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('response', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['client_id'], ['clients.id'], name=op.f('fk_idempotency_keys_client_id_clients')),
    sa.PrimaryKeyConstraint('client_id', 'key', name=op.f('pk_idempotency_keys'))
    )
    op.create_table('document_versions',
    sa.Column('document_id', sa.String(length=36), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('media_type', sa.String(length=100), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ledger_seq', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['document_id'], ['documents.id'], name=op.f('fk_document_versions_document_id_documents')),
    sa.ForeignKeyConstraint(['ledger_seq'], ['ledger_entries.seq'], name=op.f('fk_document_versions_ledger_seq_ledger_entries')),
    sa.ForeignKeyConstraint(['sha256'], ['objects.sha256'], name=op.f('fk_document_versions_sha256_objects')),
    sa.PrimaryKeyConstraint('document_id', 'version', name=op.f('pk_document_versions'))
    )


def downgrade() -> None:
    op.drop_table('document_versions')
    op.drop_table('idempotency_keys')
    with op.batch_alter_table('documents', schema=None) as batch_op:
        batch_op.drop_index('ix_documents_organisation_id')
        batch_op.drop_index('ix_documents_external_id')
        batch_op.drop_index('ix_documents_case_ref')

    op.drop_table('documents')
    op.drop_table('objects')
    op.drop_table('ledger_head')
    op.drop_table('ledger_entries')
    op.drop_table('clients')

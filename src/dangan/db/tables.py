"""SQLAlchemy Core tables: the metadata the service keeps beside its objects."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

# Stable constraint names so Alembic migrations read the same on SQLite and PostgreSQL.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

clients = Table(
    "clients",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("organisation", String(200), nullable=False),
    Column("scopes", Text, nullable=False),
    # SHA-256 of the whole API key: keys are 256-bit random, so a fast hash suffices.
    Column("key_hash", LargeBinary(32), nullable=False, unique=True),
    Column("key_prefix", String(32), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)

objects = Table(
    "objects",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

documents = Table(
    "documents",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("title", Text, nullable=False),
    Column("kind", String(100), nullable=False),
    Column("organisation", String(200), nullable=False),
    Column("external_id", String(200), nullable=True),
    Column("case_ref", String(200), nullable=True),
    Column("created_by", String(36), ForeignKey("clients.id"), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("current_version", Integer, nullable=False),
    Index("ix_documents_organisation_id", "organisation", "id"),
    Index("ix_documents_case_ref", "case_ref"),
    Index("ix_documents_external_id", "external_id"),
)

document_versions = Table(
    "document_versions",
    metadata,
    Column("document_id", String(36), ForeignKey("documents.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("sha256", String(64), ForeignKey("objects.sha256"), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("media_type", String(100), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("ledger_seq", BigInteger, ForeignKey("ledger_entries.seq"), nullable=False),
    PrimaryKeyConstraint("document_id", "version"),
)

# The event log (DESIGN.md invariant 2). Each row is one leaf of the RFC 9162 tree:
# ``body`` holds the canonical JSON bytes (RFC 8785) and ``leaf_hash`` = SHA-256(0x00 ‖ body).
ledger_entries = Table(
    "ledger_entries",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("kind", String(64), nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("leaf_hash", LargeBinary(32), nullable=False, unique=True),
    Column("prev_hash", LargeBinary(32), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# One row (id = 1): the log's size and last leaf hash. Appenders lock it, which makes the
# sequence gapless under concurrency on PostgreSQL (SQLite serialises writers anyway).
ledger_head = Table(
    "ledger_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("size", BigInteger, nullable=False),
    Column("last_hash", LargeBinary(32), nullable=False),
    # Hashes of the perfect subtrees on the tree's right edge (dangan.ledger.tree).
    Column("frontier", LargeBinary, nullable=False),
)

# Every perfect subtree of the RFC 9162 tree above the leaves (whose hashes are
# ledger_entries.leaf_hash), keyed by its post-order position: the order in which appends
# complete them (dangan.ledger._tree.node_position). The nodes one append completes are
# neighbours, so a durable append touches one page of this table, not one per level.
# INTEGER on SQLite makes the key the rowid: one B-tree, no separate index.
ledger_tree = Table(
    "ledger_tree",
    metadata,
    Column(
        "pos",
        BigInteger().with_variant(Integer(), "sqlite"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("hash", LargeBinary(32), nullable=False),
)

# Signed checkpoints (C2SP tlog-checkpoint notes), one per tree size, kept forever.
checkpoints = Table(
    "checkpoints",
    metadata,
    Column("size", BigInteger, primary_key=True, autoincrement=False),
    Column("root", LargeBinary(32), nullable=False),
    Column("note", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("client_id", String(36), ForeignKey("clients.id"), nullable=False),
    Column("key", String(200), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("response", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("client_id", "key"),
)

# RFC 3161 time-stamp responses over checkpoint notes, made on request and kept.
checkpoint_timestamps = Table(
    "checkpoint_timestamps",
    metadata,
    Column("size", BigInteger, ForeignKey("checkpoints.size"), primary_key=True, autoincrement=False),
    Column("response", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# The seal registry (印章登记): one row per organisation seal, its image an object and its
# certificate kept as DER. ``key_source`` is JSON naming where the key lives (file paths,
# token and key labels), never a secret.
seals = Table(
    "seals",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("organisation", String(200), nullable=False),
    Column("name", String(200), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("image_sha256", String(64), ForeignKey("objects.sha256"), nullable=False),
    Column("certificate", LargeBinary, nullable=False),
    Column("certificate_sha256", String(64), nullable=False),
    Column("key_source", Text, nullable=False),
    Column("created_by", String(36), ForeignKey("clients.id"), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("ledger_seq", BigInteger, ForeignKey("ledger_entries.seq"), nullable=False),
    Index("ix_seals_organisation_id", "organisation", "id"),
)

# Every lifecycle change of a seal, keyed by the ledger entry that records it.
seal_status_changes = Table(
    "seal_status_changes",
    metadata,
    Column("ledger_seq", BigInteger, ForeignKey("ledger_entries.seq"), primary_key=True,
           autoincrement=False),
    Column("seal_id", String(36), ForeignKey("seals.id"), nullable=False),
    Column("status", String(16), nullable=False),
    Column("reason", Text, nullable=True),
    Column("changed_by", String(36), ForeignKey("clients.id"), nullable=False),
    Column("changed_at", DateTime(timezone=True), nullable=False),
    Index("ix_seal_status_changes_seal_id_ledger_seq", "seal_id", "ledger_seq"),
)

# The seal usage log (用印记录): who used which seal on which document version, when,
# under which ledger entry. ``operator`` names the person at the approval system, so it
# stays here and never enters the ledger.
seal_usage = Table(
    "seal_usage",
    metadata,
    Column("ledger_seq", BigInteger, ForeignKey("ledger_entries.seq"), primary_key=True,
           autoincrement=False),
    Column("seal_id", String(36), ForeignKey("seals.id"), nullable=False),
    Column("document_id", String(36), ForeignKey("documents.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("client_id", String(36), ForeignKey("clients.id"), nullable=False),
    Column("operator", String(200), nullable=True),
    Column("used_at", DateTime(timezone=True), nullable=False),
    Index("ix_seal_usage_seal_id_ledger_seq", "seal_id", "ledger_seq"),
)

# Licence types (证照类型): what a licence of the type holds (a JSON Schema for its
# fields), how it is laid out and how long it is valid, who issues it and with which
# seal. ``definition`` is that JSON (see dangan.licences.types).
licence_types = Table(
    "licence_types",
    metadata,
    Column("code", String(20), primary_key=True),
    Column("name_zh", String(200), nullable=False),
    Column("name_en", String(200), nullable=False),
    Column("organisation", String(200), nullable=False),
    Column("issuer_uscc", String(18), nullable=False),
    Column("seal_id", String(36), ForeignKey("seals.id"), nullable=False),
    Column("definition", Text, nullable=False),
    Column("created_by", String(36), ForeignKey("clients.id"), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("ledger_seq", BigInteger, ForeignKey("ledger_entries.seq"), nullable=False),
)

# Issued licences (电子证照). The holder's ID number is kept only as a keyed hash
# (``holder_key``, HMAC-SHA256 under the deployment's holder-index key) for searches by
# other departments, and masked for display; the full number is in the licence PDF.
licences = Table(
    "licences",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("identifier", String(120), nullable=False, unique=True),
    Column("type_code", String(20), ForeignKey("licence_types.code"), nullable=False),
    Column("organisation", String(200), nullable=False),
    Column("holder_name", String(200), nullable=False),
    Column("holder_id_type", String(32), nullable=False),
    Column("holder_id_masked", String(64), nullable=False),
    Column("holder_key", String(64), nullable=False),
    Column("fields", Text, nullable=False),
    Column("valid_from", String(10), nullable=False),
    Column("valid_until", String(10), nullable=True),
    Column("status", String(16), nullable=False),
    Column("document_id", String(36), ForeignKey("documents.id"), nullable=False),
    Column("pdf_sha256", String(64), nullable=False),
    Column("token", Text, nullable=False),
    Column("issued_by", String(36), ForeignKey("clients.id"), nullable=False),
    Column("issued_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("ledger_seq", BigInteger, ForeignKey("ledger_entries.seq"), nullable=False),
    Index("ix_licences_holder_key", "holder_key"),
    Index("ix_licences_status_valid_until", "status", "valid_until"),
)

# Every lifecycle step of a licence (suspend, reinstate, revoke, expire), keyed by the
# ledger entry recording it; the free-text reason stays here, out of the ledger.
licence_status_changes = Table(
    "licence_status_changes",
    metadata,
    Column("ledger_seq", BigInteger, ForeignKey("ledger_entries.seq"), primary_key=True,
           autoincrement=False),
    Column("licence_id", String(36), ForeignKey("licences.id"), nullable=False),
    Column("status", String(16), nullable=False),
    Column("reason_code", String(32), nullable=True),
    Column("reason", Text, nullable=True),
    Column("changed_by", String(36), nullable=False),
    Column("changed_at", DateTime(timezone=True), nullable=False),
    Index("ix_licence_status_changes_licence_id_ledger_seq", "licence_id", "ledger_seq"),
)

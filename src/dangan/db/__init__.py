"""Relational metadata: tables, engines and migrations (SQLite default, PostgreSQL)."""

from dangan.db.engine import create_db_engine, is_sqlite, normalise_url, write_transaction
from dangan.db.migrate import upgrade

__all__ = ["create_db_engine", "is_sqlite", "normalise_url", "upgrade", "write_transaction"]

"""Alembic environment: the engine is handed in through ``config.attributes``."""

from __future__ import annotations

from alembic import context

from dangan.db.engine import write_transaction
from dangan.db.tables import metadata

engine = context.config.attributes["engine"]

with write_transaction(engine) as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=engine.dialect.name == "sqlite",
        transactional_ddl=True,
    )
    context.run_migrations()

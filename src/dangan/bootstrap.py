"""Preparing a deployment: data dir, schema, leftovers from a crash."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from dangan.clock import Clock, system_clock
from dangan.config import Settings
from dangan.db import create_db_engine, upgrade
from dangan.db.committer import GroupCommitter
from dangan.storage import ObjectStore, open_store


@dataclass(frozen=True)
class Backends:
    """The opened backends of one process."""

    engine: Engine
    """Metadata and ledger database."""
    store: ObjectStore
    """Content store."""
    clock: Clock
    """Source of "now"."""
    writer: GroupCommitter
    """The process's single database writer (group commit)."""

    def close(self) -> None:
        """Finish queued writes, then release connections and clients."""
        self.writer.close()
        self.store.close()
        self.engine.dispose()


def open_backends(settings: Settings, *, clock: Clock = system_clock) -> Backends:
    """Open the database and the object store named by ``settings``."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_db_engine(settings.effective_database_url)
    return Backends(
        engine=engine, store=open_store(settings), clock=clock, writer=GroupCommitter(engine)
    )


def initialise(settings: Settings) -> None:
    """Create the data dir and bring the schema up to date; safe to run again (``dangan init``).

    Also removes temporary upload files a crash may have left: they were never
    acknowledged, so nothing refers to them.
    """
    backends = open_backends(settings)
    try:
        upgrade(backends.engine)
        backends.store.cleanup_temp()
    finally:
        backends.close()

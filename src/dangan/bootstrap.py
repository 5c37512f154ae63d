"""Preparing a deployment: data dir, schema, leftovers from a crash."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection, Engine

from dangan.clock import Clock, system_clock
from dangan.config import Settings
from dangan.db import create_db_engine, upgrade
from dangan.db.engine import sync_wal
from dangan.db.committer import GroupCommitter
from dangan.errors import BackendUnavailable
from dangan.ledger.checkpoints import latest_checkpoint
from dangan.ledger.keys import create_signing_key
from dangan.ledger.service import Ledger
from dangan.signing.pki import DevPki
from dangan.signing.service import SigningServices, open_dev_pki
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
    ledger: Ledger
    """The log's origin and checkpoint signing key."""
    signing: SigningServices
    """The development PKI and the built-in time-stamp authority."""
    writer: GroupCommitter
    """The process's single database writer (group commit); each batch it commits ends
    with a signed checkpoint covering it."""

    def close(self) -> None:
        """Finish queued writes, then release connections and clients."""
        self.writer.close()
        self.store.close()
        if self.writer.engine is not self.engine:
            self.writer.engine.dispose()
        self.engine.dispose()


def open_backends(settings: Settings, *, clock: Clock = system_clock) -> Backends:
    """Open the database and the object store named by ``settings``."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_db_engine(settings.effective_database_url)
    ledger = Ledger.from_settings(settings)
    writer = _open_writer(settings, engine, seal=lambda conn: ledger.checkpoint(conn, now=clock()))
    return Backends(
        engine=engine,
        store=open_store(settings),
        clock=clock,
        ledger=ledger,
        signing=SigningServices.from_settings(settings, clock=clock),
        writer=writer,
    )


def _open_writer(
    settings: Settings, engine: Engine, *, seal: Callable[[Connection], object]
) -> GroupCommitter:
    """The group committer; on SQLite with its own connection that defers the WAL flush
    to the committer's sync thread (one fsync for many commits)."""
    url = settings.effective_database_url
    if not url.startswith("sqlite"):
        return GroupCommitter(engine, seal=seal)
    engine = create_db_engine(url, deferred_sync=True, pool_size=1, max_overflow=0)
    return GroupCommitter(engine, seal=seal, sync=lambda: sync_wal(engine))


def _licence_keys(settings: Settings, pki: DevPki) -> None:
    """A QR-signing key for licence tokens, and the holder index's secret, when missing."""
    from dangan.licences.holders import HolderIndex
    from dangan.licences.qr_key import create_qr_key, load_qr_keys

    active, _trusted = load_qr_keys(settings.qr_key_dir, pki.passphrase, now=system_clock())
    if active is None:
        create_qr_key(pki, settings.qr_key_dir, pki.passphrase, now=system_clock())
    HolderIndex.from_file(settings.holder_index_key_file, create=True)


def initialise(settings: Settings) -> None:
    """Create the data dir and bring the schema up to date; safe to run again (``dangan init``).

    Also makes the ledger's checkpoint signing key and the development PKI (with its
    TSA certificate) when there are none, and removes
    temporary upload files a crash may have left: they were never acknowledged, so
    nothing refers to them.
    """
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_db_engine(settings.effective_database_url)
    try:
        upgrade(engine)
        key_file = settings.effective_ledger_key_file
        if not key_file.exists():
            with engine.connect() as conn:
                signed = latest_checkpoint(conn)
            if signed is not None:
                # A new key would silently orphan every checkpoint already handed out.
                raise BackendUnavailable(
                    f"the ledger signing key {key_file} is missing but checkpoints up to size "
                    f"{signed.size} were signed with it: restore the key file"
                )
            create_signing_key(key_file, name=settings.ledger_origin)
    finally:
        engine.dispose()
    pki = open_dev_pki(settings, now=system_clock(), create=True)
    _licence_keys(settings, pki)
    backends = open_backends(settings)
    try:
        backends.store.cleanup_temp()
    finally:
        backends.close()

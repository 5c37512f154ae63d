"""SQLite write transactions take turns on one kept connection, and give it up cleanly."""

from __future__ import annotations

import gc
import sqlite3
import threading
import warnings
import weakref
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError

from dangan.db import create_db_engine, upgrade, write_transaction
from dangan.db.tables import ledger_entries
from dangan.ledger.log import append_event, read_head, verify_chain

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@pytest.fixture
def sqlite_engine(tmp_path: Path):
    engine = create_db_engine(f"sqlite:///{tmp_path / 'dangan.db'}")
    upgrade(engine)
    yield engine
    engine.dispose()


def driver(conn) -> sqlite3.Connection:
    return conn.connection.dbapi_connection


def append(engine: Engine, i: int) -> None:
    with write_transaction(engine) as conn:
        append_event(conn, kind="test.event", actor="t", subject={"i": i}, now=NOW)


def test_writers_take_turns_on_one_connection(sqlite_engine: Engine) -> None:
    with write_transaction(sqlite_engine) as conn:
        first = driver(conn)
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    with write_transaction(sqlite_engine) as conn:
        assert driver(conn) is first
    with sqlite_engine.connect() as reader:
        assert driver(reader) is not first  # readers keep using the pool


def test_dispose_closes_the_kept_connection(sqlite_engine: Engine) -> None:
    with write_transaction(sqlite_engine) as conn:
        kept = driver(conn)
    sqlite_engine.dispose()
    with pytest.raises(sqlite3.ProgrammingError):
        kept.execute("SELECT 1")
    append(sqlite_engine, 0)
    with sqlite_engine.connect() as conn:
        assert read_head(conn).size == 1


def test_a_failed_transaction_leaves_nothing_behind(sqlite_engine: Engine) -> None:
    append(sqlite_engine, 0)
    with pytest.raises(RuntimeError), write_transaction(sqlite_engine) as conn:
        append_event(conn, kind="test.event", actor="t", subject={"i": 1}, now=NOW)
        raise RuntimeError("abort")
    with pytest.raises(IntegrityError), write_transaction(sqlite_engine) as conn:
        conn.execute(ledger_entries.insert(), [{"seq": 0}])  # violates NOT NULL / PK
    append(sqlite_engine, 1)
    with sqlite_engine.connect() as conn:
        assert verify_chain(conn).size == 2


def test_threads_share_the_writer(sqlite_engine: Engine) -> None:
    def work(offset: int) -> None:
        for i in range(25):
            append(sqlite_engine, offset + i)

    threads = [threading.Thread(target=work, args=(100 * n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with sqlite_engine.connect() as conn:
        assert verify_chain(conn).size == 100
        assert conn.execute(select(func.count()).select_from(ledger_entries)).scalar() == 100


def test_an_engine_dropped_without_dispose_is_collected_quietly(tmp_path: Path) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'dangan.db'}")
    upgrade(engine)
    append(engine, 0)
    collected = weakref.ref(engine)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del engine
        gc.collect()
    assert collected() is None  # the kept connection does not keep its engine alive
    assert not [w for w in caught if "garbage collector" in str(w.message)]


def test_dispose_during_a_write_lets_the_writer_finish(sqlite_engine: Engine) -> None:
    with write_transaction(sqlite_engine) as conn:
        append_event(conn, kind="test.event", actor="t", subject={"i": 0}, now=NOW)
        sqlite_engine.dispose()
        append_event(conn, kind="test.event", actor="t", subject={"i": 1}, now=NOW)
        kept = driver(conn)
    with pytest.raises(sqlite3.ProgrammingError):
        kept.execute("SELECT 1")  # closed once its transaction was over
    append(sqlite_engine, 2)
    with sqlite_engine.connect() as conn:
        assert verify_chain(conn).size == 3

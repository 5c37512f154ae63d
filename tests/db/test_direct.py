"""Statements run on the driver's cursor behave like ``Connection.execute`` on every backend."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, bindparam, func, select, update
from sqlalchemy.exc import IntegrityError

from dangan.db.direct import DirectStatement
from dangan.db.tables import checkpoints

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
INSERT = DirectStatement(checkpoints.insert())
BY_SIZE = DirectStatement(
    select(checkpoints.c.size, checkpoints.c.note).where(checkpoints.c.size == bindparam("size"))
)
SMALL = DirectStatement(select(checkpoints.c.size).where(checkpoints.c.size < 3))
RENAME = DirectStatement(
    update(checkpoints).where(checkpoints.c.size == 2).values(note=bindparam("new_note"))
)


def row(size: int) -> dict:
    return {"size": size, "root": bytes([size]) * 32, "note": f"note {size}", "created_at": NOW}


def test_rows_parameters_and_literal_binds(engine: Engine) -> None:
    with engine.begin() as conn:
        INSERT.execute(conn, row(1))
        INSERT.execute_columns(
            conn,
            {"size": [2, 3], "root": [b"\x02" * 32, b"\x03" * 32], "note": ["two", "three"]},
            constants={"created_at": NOW},
        )
        RENAME.execute(conn, {"new_note": "deux"})  # size == 2 is bound from the statement
        assert BY_SIZE.execute(conn, {"size": 2}) == [(2, "deux")]
        assert sorted(SMALL.execute(conn)) == [(1,), (2,)]
        assert INSERT.execute(conn, row(4)) == []
    with engine.connect() as conn:
        # what SQLAlchemy reads back is what it would have written itself
        stored = conn.execute(select(checkpoints).where(checkpoints.c.size == 3)).one()
        assert (bytes(stored.root), stored.note) == (b"\x03" * 32, "three")
        assert stored.created_at.replace(tzinfo=UTC) == NOW


def test_driver_errors_are_sqlalchemy_errors(engine: Engine) -> None:
    with engine.begin() as conn:
        INSERT.execute(conn, row(1))
    with pytest.raises(IntegrityError) as caught, engine.begin() as conn:
        INSERT.execute(conn, row(1))
    assert isinstance(caught.value.orig, engine.dialect.loaded_dbapi.IntegrityError)
    assert "INSERT INTO checkpoints" in caught.value.statement


def test_runs_inside_the_connections_transaction(engine: Engine) -> None:
    with engine.connect() as conn:
        INSERT.execute(conn, row(1))  # begins, as Connection.execute would
        assert conn.in_transaction()
        conn.rollback()
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(checkpoints)).scalar() == 0

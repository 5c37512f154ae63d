"""Proofs read the stored tree by primary key, never by scanning it.

SQLite plans a row-value ``(level, idx) IN (…)`` list as a scan of the whole node
table, which made every proof on a million-entry log take ~200 ms.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event

from dangan.db import create_db_engine, upgrade, write_transaction
from dangan.ledger.log import NewEvent, append_events
from dangan.ledger.tree import consistency_proof_at, inclusion_proof_at, root_at

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def test_proof_queries_search_the_node_table_by_primary_key(tmp_path: Path) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'dangan.db'}")
    upgrade(engine)
    with write_transaction(engine) as conn:
        append_events(conn, [NewEvent("test.event", "t", {"i": i}) for i in range(100)], now=NOW)
    reads: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().startswith("SELECT") and "ledger_tree" in statement:
            reads.append((statement, parameters))

    with engine.connect() as conn:
        event.listen(engine, "before_cursor_execute", capture)
        inclusion_proof_at(conn, 37, 100, head_size=100)
        consistency_proof_at(conn, 37, 100, head_size=100)
        root_at(conn, 77, head_size=100)
        event.remove(engine, "before_cursor_execute", capture)
        assert len(reads) == 3
        for statement, parameters in reads:
            explained = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
            plan = [row[3] for row in explained]
            assert not [step for step in plan if step.startswith("SCAN")], plan
    engine.dispose()

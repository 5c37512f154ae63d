"""Proofs read the stored tree by primary key, never by scanning it.

SQLite plans a row-value ``(level, idx) IN (…)`` list as a scan of the whole node
table, which made every proof on a million-entry log take ~200 ms.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from dangan.db import create_db_engine, upgrade, write_transaction
from dangan.ledger.log import NewEvent, append_events
from dangan.ledger.tree import consistency_proof_at, inclusion_proof_at, root_at

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def test_proof_queries_search_the_node_table_by_primary_key(tmp_path: Path) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'dangan.db'}")
    upgrade(engine)
    with write_transaction(engine) as conn:
        append_events(conn, [NewEvent("test.event", "t", {"i": i}) for i in range(100)], now=NOW)
    executed: list[str] = []
    with engine.connect() as conn:
        # Proof reads run on the driver's cursor (dangan.db.direct), so they are watched
        # where the driver runs them: SQLite hands the trace the SQL with its values bound.
        driver = conn.connection.dbapi_connection
        driver.set_trace_callback(executed.append)
        inclusion_proof_at(conn, 37, 100, head_size=100)
        consistency_proof_at(conn, 37, 100, head_size=100)
        root_at(conn, 77, head_size=100)
        driver.set_trace_callback(None)
        reads = [s for s in executed if s.lstrip().startswith("SELECT") and "ledger_tree" in s]
        assert len(reads) == 3
        for statement in reads:
            plan = [row[3] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}")]
            assert not [step for step in plan if step.startswith("SCAN")], plan
    engine.dispose()

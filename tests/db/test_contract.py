"""Database contract: the same behaviour on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, func, select, text, update
from sqlalchemy.exc import IntegrityError as SQLIntegrityError

from dangan.clients import create_client
from dangan.db import create_db_engine, upgrade, write_transaction
from dangan.db.tables import document_versions, documents, ledger_entries, objects
from dangan.documents import DocumentMetadata, complete_ingest, record_ingest
from dangan.errors import IdempotencyConflict, IntegrityError
from dangan.ledger.log import append_event, iter_entries, read_head, verify_chain
from dangan.ledger.merkle import leaf_hash
from dangan.storage import StoredObject

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
META = DocumentMetadata(title="申请书", kind="application", organisation="org-1")


def ingest(engine: Engine, **kwargs):
    with write_transaction(engine) as conn:
        return complete_ingest(conn, record_ingest(conn, **kwargs), None)


def _obj(n: int) -> StoredObject:
    return StoredObject(sha256=f"{n:064x}", size=n)


def test_migrations_are_idempotent(engine: Engine) -> None:
    upgrade(engine)
    with engine.connect() as conn:
        assert read_head(conn).size == 0


def test_sqlite_durability_pragmas(engine: Engine) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite pragmas")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_appends_form_a_gapless_hash_chain(engine: Engine) -> None:
    for i in range(25):
        with write_transaction(engine) as conn:
            entry = append_event(conn, kind="test.event", actor="t", subject={"i": i}, now=NOW)
            assert entry.seq == i
    with engine.connect() as conn:
        entries = list(iter_entries(conn, batch=7))
        head = verify_chain(conn)
    assert [e.seq for e in entries] == list(range(25))
    assert head.size == 25 and head.last_hash == entries[-1].leaf_hash
    for before, after in zip(entries, entries[1:]):
        assert after.prev_hash == before.leaf_hash
    assert all(e.leaf_hash == leaf_hash(e.body) for e in entries)


def test_event_bytes_are_canonical_json(engine: Engine) -> None:
    with write_transaction(engine) as conn:
        entry = append_event(
            conn, kind="test.event", actor="t", subject={"b": 1, "a": "档案"}, now=NOW
        )
    assert entry.body == (
        '{"actor":"t","prev":"' + "00" * 32 + '","seq":0,"subject":{"a":"档案","b":1},'
        '"time":"2026-11-28T12:00:00.000Z","type":"test.event","v":1}'
    ).encode()


def test_rolled_back_transaction_leaves_no_entry(engine: Engine) -> None:
    with pytest.raises(RuntimeError):
        with write_transaction(engine) as conn:
            append_event(conn, kind="test.event", actor="t", subject={}, now=NOW)
            raise RuntimeError("abort")
    with engine.connect() as conn:
        assert read_head(conn).size == 0
        assert conn.execute(select(func.count()).select_from(ledger_entries)).scalar() == 0


def test_concurrent_appends_never_collide(engine: Engine) -> None:
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(25):
                with write_transaction(engine) as conn:
                    append_event(conn, kind="test.event", actor=f"w{n}", subject={"i": i}, now=NOW)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with engine.connect() as conn:
        assert verify_chain(conn).size == 100


@pytest.mark.parametrize("column", ["body", "leaf_hash", "prev_hash"])
def test_verify_chain_names_a_tampered_entry(engine: Engine, column: str) -> None:
    for i in range(5):
        with write_transaction(engine) as conn:
            append_event(conn, kind="test.event", actor="t", subject={"i": i}, now=NOW)
    with write_transaction(engine) as conn:
        row = conn.execute(select(ledger_entries).where(ledger_entries.c.seq == 2)).one()
        value = bytearray(getattr(row, column))
        value[len(value) // 2] ^= 0x01
        conn.execute(update(ledger_entries).where(ledger_entries.c.seq == 2).values({column: bytes(value)}))
    with engine.connect() as conn, pytest.raises(IntegrityError) as caught:
        verify_chain(conn)
    assert caught.value.extra["seq"] in (2, 3)


def test_foreign_keys_are_enforced(engine: Engine) -> None:
    with pytest.raises(SQLIntegrityError):
        with write_transaction(engine) as conn:
            conn.execute(
                document_versions.insert().values(
                    document_id="missing", version=1, sha256="0" * 64, size=0,
                    media_type="application/pdf", created_at=NOW, ledger_seq=0,
                )
            )


def test_ingest_records_everything_in_one_transaction(engine: Engine) -> None:
    client = create_client(engine, name="s", organisation="o", scopes=["documents:write"], now=NOW).client
    receipt, replayed = ingest(
        engine, client=client, meta=META, stored=_obj(1), media_type="application/pdf",
        idempotency_key=None, now=NOW,
    )
    assert not replayed
    assert receipt["ledger"]["seq"] == 1  # entry 0 is client.created
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(documents)).scalar() == 1
        assert conn.execute(select(func.count()).select_from(objects)).scalar() == 1
        verify_chain(conn)
        body = conn.execute(select(ledger_entries.c.body).where(ledger_entries.c.seq == 1)).scalar()
    assert "申请书".encode() not in bytes(body)  # titles never enter the ledger


def test_same_content_twice_is_one_object_two_documents(engine: Engine) -> None:
    client = create_client(engine, name="s", organisation="o", scopes=["documents:write"], now=NOW).client
    ids = {
        ingest(engine, client=client, meta=META, stored=_obj(7), media_type="application/pdf",
                      idempotency_key=None, now=NOW)[0]["id"]
        for _ in range(2)
    }
    assert len(ids) == 2
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(objects)).scalar() == 1


def test_idempotent_replay_and_conflict(engine: Engine) -> None:
    client = create_client(engine, name="s", organisation="o", scopes=["documents:write"], now=NOW).client
    first, replayed = ingest(engine, client=client, meta=META, stored=_obj(3),
                                    media_type="application/pdf", idempotency_key="k1", now=NOW)
    again, replayed_again = ingest(engine, client=client, meta=META, stored=_obj(3),
                                          media_type="application/pdf", idempotency_key="k1", now=NOW)
    assert (replayed, replayed_again) == (False, True)
    assert again == first
    with pytest.raises(IdempotencyConflict):
        ingest(engine, client=client, meta=META, stored=_obj(4),
                      media_type="application/pdf", idempotency_key="k1", now=NOW)
    with engine.connect() as conn:
        assert read_head(conn).size == 2  # client.created + one ingest
        assert conn.execute(text("SELECT count(*) FROM documents")).scalar() == 1


def test_group_commit_isolates_failing_jobs(engine: Engine) -> None:
    from dangan.db.committer import GroupCommitter

    writer = GroupCommitter(engine)

    def good(i: int):
        return lambda conn: append_event(conn, kind="test.event", actor="t", subject={"i": i}, now=NOW).seq

    def bad(conn):
        append_event(conn, kind="test.event", actor="t", subject={"bad": True}, now=NOW)
        raise ValueError("job failed")

    futures = [writer.submit(good(0)), writer.submit(bad), writer.submit(good(1))]
    writer.close()
    assert futures[0].result() == 0
    with pytest.raises(ValueError):
        futures[1].result()
    assert futures[2].result() == 1  # the failed job's append was rolled back with it
    with engine.connect() as conn:
        assert verify_chain(conn).size == 2


def test_group_commit_many_concurrent_jobs(engine: Engine) -> None:
    from dangan.db.committer import GroupCommitter

    writer = GroupCommitter(engine, max_batch=16)
    futures = [
        writer.submit(lambda conn, i=i: append_event(conn, kind="test.event", actor="t", subject={"i": i}, now=NOW).seq)
        for i in range(200)
    ]
    assert sorted(f.result() for f in futures) == list(range(200))
    writer.close()
    with engine.connect() as conn:
        assert verify_chain(conn).size == 200


def test_group_commit_answers_only_after_the_sync(engine: Engine) -> None:
    from dangan.db.committer import GroupCommitter

    release = threading.Event()
    synced: list[int] = []

    def sync() -> None:
        release.wait(10)
        synced.append(1)

    writer = GroupCommitter(engine, sync=sync)
    future = writer.submit(lambda conn: append_event(conn, kind="k", actor="a", subject={}, now=NOW).seq)
    with engine.connect() as conn:  # committed, but not yet reported durable
        deadline = datetime.now(UTC).timestamp() + 10
        while read_head(conn).size == 0 and datetime.now(UTC).timestamp() < deadline:
            conn.rollback()
    assert not future.done()
    release.set()
    assert future.result(timeout=10) == 0 and synced == [1]
    writer.close()


def test_group_commit_failed_sync_fails_the_jobs(engine: Engine) -> None:
    from dangan.db.committer import GroupCommitter

    def sync() -> None:
        raise OSError("disk gone")

    writer = GroupCommitter(engine, sync=sync)
    future = writer.submit(lambda conn: append_event(conn, kind="k", actor="a", subject={}, now=NOW).seq)
    with pytest.raises(OSError):
        future.result(timeout=10)
    writer.close()


def test_deferred_sync_engine_is_flushed_by_sync_wal(tmp_path) -> None:
    from dangan.db.engine import sync_wal

    url = f"sqlite:///{tmp_path / 'd.db'}"
    upgrade(create_db_engine(url))
    deferred = create_db_engine(url, deferred_sync=True)
    with deferred.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
    with write_transaction(deferred) as conn:
        append_event(conn, kind="k", actor="a", subject={}, now=NOW)
    assert (tmp_path / "d.db-wal").exists()
    sync_wal(deferred)  # must not raise, with or without a WAL file
    deferred.dispose()
    sync_wal(deferred)


def test_receipts_of_one_batch_verify_independently(engine: Engine) -> None:
    from dangan.documents import IngestRequest, IngestWriter
    from dangan.ledger.checkpoints import ensure_checkpoint
    from dangan.ledger.note import NoteSigner
    from dangan.ledger.service import receipt_proof
    from tests.support import independent_verifier

    signer = NoteSigner.generate("test.example/ledger")
    client = create_client(
        engine, name="s", organisation="o", scopes=["documents:write"], now=NOW
    ).client
    keys = [None, "k1", None, "k1", None, "k2", None]  # the second "k1" repeats the first
    stored = [_obj(10 + i) for i in range(len(keys))]
    stored[3] = stored[1]
    requests = [IngestRequest(client, META, s, "application/pdf", k) for s, k in zip(stored, keys)]
    writer = IngestWriter(clock=lambda: NOW)
    with write_transaction(engine) as conn:  # what the group committer does with one batch
        values = writer.run_many(conn, requests)
        sealed = ensure_checkpoint(conn, signer=signer, origin="test.example/ledger", now=NOW)
        results = writer.complete_many(conn, values, sealed)
        from_store = [receipt_proof(conn, v.entry, sealed) for v in values if v.entry is not None]
    assert [replayed for _, replayed in results] == [False, False, False, True, False, False, False]
    assert results[3][0] == results[1][0]
    fresh = [receipt for receipt, replayed in results if not replayed]
    assert [receipt["ledger"] for receipt in fresh] == from_store
    for receipt in fresh:
        assert independent_verifier.verify(receipt, signer.verifier_key())


def test_group_commit_takes_the_jobs_that_queued_while_it_waited_for_the_lock(
    engine: Engine,
) -> None:
    from dangan.db.committer import GroupCommitter

    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite's writers queue on a lock of the process")
    sealed: list[int] = []
    writer = GroupCommitter(engine, seal=lambda conn: sealed.append(read_head(conn).size))

    def job(i: int):
        def append(conn):
            return append_event(conn, kind="test.event", actor="t", subject={"i": i}, now=NOW).seq

        return append

    with write_transaction(engine):  # another writer holds the lock
        first = writer.submit(job(0))
        deadline = datetime.now(UTC).timestamp() + 10
        while not writer._jobs.empty() and datetime.now(UTC).timestamp() < deadline:
            pass  # until the writer has taken the first job and waits for the lock
        later = [writer.submit(job(i)) for i in range(1, 4)]
    assert [f.result(timeout=10) for f in [first, *later]] == [0, 1, 2, 3]
    writer.close()
    assert sealed == [4]  # one batch, sealed once

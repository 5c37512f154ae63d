"""The stored tree, proofs and checkpoints: the same on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, select, update

from dangan.db import create_db_engine, upgrade, write_transaction
from dangan.db.tables import checkpoints, ledger_entries, ledger_head, ledger_tree
from dangan.errors import IntegrityError
from dangan.ledger import _tree, merkle, tree
from dangan.ledger import checkpoints as checkpoints_module
from dangan.ledger.checkpoint import open_checkpoint
from dangan.ledger.checkpoints import ensure_checkpoint, latest_checkpoint
from dangan.ledger.log import NewEvent, append_event, append_events, iter_entries, read_head
from dangan.ledger.note import NoteSigner, NoteVerifier
from dangan.ledger.tree import consistency_proof_at, inclusion_proof_at, root_at
from dangan.ledger.verify import verify_ledger

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
ORIGIN = "test.example/ledger"


@pytest.fixture(scope="module")
def signer() -> NoteSigner:
    return NoteSigner.generate(ORIGIN)


def fill(engine: Engine, count: int, *, batch: int = 1) -> list[bytes]:
    for start in range(0, count, batch):
        with write_transaction(engine) as conn:
            append_events(
                conn,
                [NewEvent("test.event", "t", {"i": i}) for i in range(start, min(count, start + batch))],
                now=NOW,
            )
    with engine.connect() as conn:
        return [e.leaf_hash for e in iter_entries(conn)]


def test_proofs_from_the_store_match_the_rfc_functions(engine: Engine) -> None:
    leaves = fill(engine, 45, batch=7)
    with engine.connect() as conn:
        head = read_head(conn)
        assert head.root == merkle.root(leaves)
        for size in range(1, 46):
            assert root_at(conn, size, head_size=45) == merkle.root(leaves[:size])
            for index in range(size):
                assert inclusion_proof_at(conn, index, size, head_size=45) == merkle.inclusion_proof(
                    leaves[:size], index
                )
            for old in range(0, size + 1):
                assert consistency_proof_at(conn, old, size, head_size=45) == merkle.consistency_proof(
                    leaves[:size], old
                )


def test_batched_and_single_appends_build_the_same_log(engine: Engine, database_url: str) -> None:
    batched = fill(engine, 30, batch=30)
    other = create_db_engine(database_url.replace("dangan.db", "other.db")) if "sqlite" in database_url else None
    if other is None:
        pytest.skip("second database only on SQLite")
    upgrade(other)
    single = fill(other, 30, batch=1)
    other.dispose()
    assert batched == single


def test_checkpoints_verify_and_are_never_forked(engine: Engine, signer: NoteSigner) -> None:
    verifier = NoteVerifier.parse(signer.verifier_key())
    sizes = []
    for n in range(1, 6):
        fill(engine, 1)
        with write_transaction(engine) as conn:
            cp = ensure_checkpoint(conn, signer=signer, origin=ORIGIN, now=NOW)
            again = ensure_checkpoint(conn, signer=signer, origin=ORIGIN, now=NOW)
        assert again == cp  # no new signature while nothing was appended
        opened = open_checkpoint(cp.note, verifier, origin=ORIGIN)
        assert (opened.size, opened.root) == (n, cp.root)
        sizes.append(cp.size)
    assert sizes == [1, 2, 3, 4, 5]
    # Rewrite history thoroughly: change leaf 1 and rebuild every node and the head
    # so the stored tree is self-consistent. The next checkpoint must be refused.
    leaves = fill(engine, 1)
    leaves[1] = b"\x11" * 32
    frontier: dict[int, bytes] = {}
    nodes = [n for i, leaf in enumerate(leaves) for n in tree.push(frontier, i, leaf)]
    with write_transaction(engine) as conn:
        conn.execute(update(ledger_entries).where(ledger_entries.c.seq == 1).values(leaf_hash=leaves[1]))
        conn.execute(ledger_tree.delete())
        tree.store_nodes(conn, nodes)
        conn.execute(update(ledger_head).values(frontier=tree.pack_frontier(frontier, len(leaves))))
    with write_transaction(engine) as conn, pytest.raises(IntegrityError, match="refusing to sign"):
        ensure_checkpoint(conn, signer=signer, origin=ORIGIN, now=NOW)
    # Nor when this connection appends to the rewritten head: its own appends grew the
    # head from the rewritten tree, not from the signed one.
    with write_transaction(engine) as conn, pytest.raises(IntegrityError, match="refusing to sign"):
        append_event(conn, kind="test.event", actor="t", subject={"i": 99}, now=NOW)
        ensure_checkpoint(conn, signer=signer, origin=ORIGIN, now=NOW)
    with engine.connect() as conn:
        assert latest_checkpoint(conn).size == 5



def test_checkpoints_over_own_appends_read_no_proof_but_others_appends_do(
    engine: Engine, database_url: str, signer: NoteSigner, monkeypatch: pytest.MonkeyPatch
) -> None:
    proofs_read = []

    def counted(*args, **kwargs):
        proofs_read.append(args[1:3])
        return consistency_proof_at(*args, **kwargs)

    monkeypatch.setattr(checkpoints_module, "consistency_proof_at", counted)
    fill(engine, 3)
    for batch in (1, 4):  # two appends in one transaction: the head grew from the last checkpoint
        with write_transaction(engine) as conn:
            ensure_checkpoint(conn, signer=signer, origin=ORIGIN, now=NOW)
            append_events(conn, [NewEvent("test.event", "t", {"i": i}) for i in range(batch)], now=NOW)
            append_event(conn, kind="test.event", actor="t", subject={"i": -1}, now=NOW)
            cp = ensure_checkpoint(conn, signer=signer, origin=ORIGIN, now=NOW)
    assert (cp.size, proofs_read) == (10, [])
    elsewhere = create_db_engine(database_url)  # another process's appends, as far as this engine knows
    try:
        fill(elsewhere, 2)
    finally:
        elsewhere.dispose()
    with write_transaction(engine) as conn:
        cp = ensure_checkpoint(conn, signer=signer, origin=ORIGIN, now=NOW)
    assert (cp.size, proofs_read) == (12, [(10, 12)])
    with engine.connect() as conn:
        verify_ledger(conn, verifier=NoteVerifier.parse(signer.verifier_key()))


@pytest.mark.parametrize(
    ("table", "column", "where"),
    [
        ("entries", "body", 3),
        ("entries", "leaf_hash", 3),
        ("entries", "prev_hash", 3),
        ("nodes", "hash", (1, 1)),
        ("nodes", "hash", (2, 0)),
        ("head", "frontier", None),
        ("checkpoints", "root", 4),
        ("checkpoints", "note", 4),
    ],
)
def test_verify_ledger_names_every_tampered_row(engine, signer, table, column, where) -> None:
    for _ in range(6):
        fill(engine, 1)
        with write_transaction(engine) as conn:
            ensure_checkpoint(conn, signer=signer, origin=ORIGIN, now=NOW)
    verifier = NoteVerifier.parse(signer.verifier_key())
    with engine.connect() as conn:
        assert verify_ledger(conn, verifier=verifier) == 6
    tables = {"entries": (ledger_entries, "seq"), "nodes": (ledger_tree, None),
              "head": (ledger_head, "id"), "checkpoints": (checkpoints, "size")}
    target, key = tables[table]
    with write_transaction(engine) as conn:
        if table == "nodes":
            cond = target.c.pos == _tree.node_position(*where)
        else:
            cond = target.c[key] == (1 if table == "head" else where)
        value = conn.execute(select(target.c[column]).where(cond)).scalar_one()
        flipped = bytearray(value.encode() if isinstance(value, str) else value)
        flipped[len(flipped) // 3] ^= 0x04
        new = bytes(flipped).decode("utf-8", "replace") if isinstance(value, str) else bytes(flipped)
        conn.execute(update(target).where(cond).values({column: new}))
    with engine.connect() as conn, pytest.raises(IntegrityError) as caught:
        verify_ledger(conn, verifier=verifier)
    named = caught.value.extra
    if table == "entries":
        assert named.get("seq") in (where, where + 1)
    elif table == "nodes":
        assert named.get("node") == list(where) or "checkpoint" in named
    elif table == "checkpoints":
        assert named.get("checkpoint") == where


def test_single_append_keeps_the_head_consistent(engine: Engine) -> None:
    with write_transaction(engine) as conn:
        entry = append_event(conn, kind="k", actor="a", subject={}, now=NOW)
    with engine.connect() as conn:
        head = read_head(conn)
    assert head.size == 1 and head.root == merkle.leaf_hash(entry.body) == entry.leaf_hash

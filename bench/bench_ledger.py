"""Ledger: durable single appends, batched appends and proof latency, on SQLite.

(a) 2,000 appends, each in its own ``write_transaction`` on a fresh file. Baseline: stdlib
    ``sqlite3`` inserting the same event bytes into a one-table database with the same
    pragmas (WAL, synchronous=FULL), one commit per row; the two take turns in slices so
    that drifting flush latency hits both alike. Target: ratio >= 0.5.
(b) 100,000 entries through ``append_events``, 1,000 per transaction. Target: >= 20,000
    entries/s. Baseline, for context: ``sqlite3`` ``executemany`` of the same bytes.
(c) inclusion and consistency proofs on a 1,000,000-entry log (built once, then cached in
    ``bench/out/``), each verified against roots computed here from the stored leaves.
    Target: median <= 1 ms. Baseline, for context: one primary-key SELECT on the same file.

``--quick`` shrinks every size for a smoke run.
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Connection, Engine

from dangan.db import create_db_engine, upgrade, write_transaction
from dangan.ledger import merkle
from dangan.ledger.log import (
    GENESIS_PREV,
    NewEvent,
    append_event,
    append_events,
    encode_event,
    get_entry,
    iter_entries,
    read_head,
)
from dangan.ledger.tree import consistency_proof_at, inclusion_proof_at

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
OUT = Path(__file__).resolve().parent / "out"


def make_events(count: int, *, seed: int = 1) -> list[NewEvent]:
    """``count`` events shaped like ``document.ingested`` (ids and hashes only)."""
    rng = random.Random(seed)
    actor = str(uuid.UUID(int=rng.getrandbits(128)))
    return [
        NewEvent(
            kind="document.ingested",
            actor=actor,
            subject={
                "document": str(uuid.UUID(int=rng.getrandbits(128))),
                "version": 1,
                "sha256": rng.getrandbits(256).to_bytes(32).hex(),
                "size": rng.randrange(10_000, 10_000_000),
                "media_type": "application/pdf",
            },
        )
        for _ in range(count)
    ]


def encode_all(events: list[NewEvent]) -> list[bytes]:
    """The entry bytes the ledger will store for ``events`` appended to an empty log."""
    bodies, prev = [], GENESIS_PREV
    for seq, e in enumerate(events):
        body = encode_event(seq=seq, prev_hash=prev, kind=e.kind, actor=e.actor,
                            subject=e.subject, at=NOW)
        bodies.append(body)
        prev = merkle.leaf_hash(body)
    return bodies


def ledger_engine(path: Path) -> Engine:
    engine = create_db_engine(f"sqlite:///{path}")
    upgrade(engine)
    return engine


def raw_db(path: Path) -> sqlite3.Connection:
    """A one-table stdlib database with dangan's durability pragmas; explicit transactions."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE events (seq INTEGER PRIMARY KEY, body BLOB NOT NULL)")
    return db


def timed(run: Callable[[], object]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


# --- (a) durable single appends -------------------------------------------------------


def single_baseline(db: sqlite3.Connection, bodies: list[bytes], first: int) -> tuple[float, float]:
    """Seconds (wall, CPU) for raw sqlite3 to insert and commit each body in its own
    transaction."""
    started, cpu = time.perf_counter(), time.process_time()
    for seq, body in enumerate(bodies, first):
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO events (seq, body) VALUES (?, ?)", (seq, body))
        db.execute("COMMIT")
    return time.perf_counter() - started, time.process_time() - cpu


def single_ledger(
    engine: Engine, events: list[NewEvent], stored: list[bytes]
) -> tuple[float, float]:
    """Seconds (wall, CPU) for the ledger to append each event in its own write transaction."""
    started, cpu = time.perf_counter(), time.process_time()
    for e in events:
        with write_transaction(engine) as conn:
            entry = append_event(conn, kind=e.kind, actor=e.actor, subject=e.subject, now=NOW)
        stored.append(entry.body)
    return time.perf_counter() - started, time.process_time() - cpu


def bench_single(count: int, root: Path, *, rounds: int = 10) -> bool:
    """Baseline and ledger take turns in ``rounds`` slices, so a change in the disk's
    flush latency during the run hits both alike."""
    events = make_events(count)
    bodies = encode_all(events)
    db, engine = raw_db(root / "single-raw.db"), ledger_engine(root / "single-ledger.db")
    base_s = ours_s = base_cpu = ours_cpu = 0.0
    stored: list[bytes] = []
    try:
        step = -(-count // rounds)
        for start in range(0, count, step):
            wall, cpu = single_baseline(db, bodies[start : start + step], start)
            base_s, base_cpu = base_s + wall, base_cpu + cpu
            wall, cpu = single_ledger(engine, events[start : start + step], stored)
            ours_s, ours_cpu = ours_s + wall, ours_cpu + cpu
    finally:
        db.close()
        engine.dispose()
    assert stored == bodies, "the ledger stored other bytes than the baseline"
    base, ours = count / base_s, count / ours_s
    ratio = ours / base
    print(f"(a) durable single appends: {count} appends, one transaction each")
    print(f"  baseline (sqlite3 insert + commit, WAL, synchronous=FULL): {base:9.0f} appends/s")
    print(f"  ledger (write_transaction + append_event):                 {ours:9.0f} appends/s")
    print(f"  per append: baseline {base_s / count * 1e6:.0f} µs (CPU {base_cpu / count * 1e6:.0f}), "
          f"ledger {ours_s / count * 1e6:.0f} µs (CPU {ours_cpu / count * 1e6:.0f}); "
          "the rest is waiting for the disk")
    print(f"  ratio {ratio:.2f}x (target >= 0.50x): {verdict(ratio >= 0.5)}")
    return ratio >= 0.5


# --- (b) batched appends --------------------------------------------------------------


def batched_baseline(bodies: list[bytes], batch: int, path: Path) -> float:
    db = raw_db(path)

    def run() -> None:
        for start in range(0, len(bodies), batch):
            db.execute("BEGIN IMMEDIATE")
            db.executemany(
                "INSERT INTO events (seq, body) VALUES (?, ?)",
                enumerate(bodies[start : start + batch], start),
            )
            db.execute("COMMIT")

    try:
        return timed(run)
    finally:
        db.close()


def append_batched(engine: Engine, events: Iterable[NewEvent], batch: int) -> None:
    """Append ``events`` through the ledger, ``batch`` per write transaction."""
    events = list(events)
    for start in range(0, len(events), batch):
        with write_transaction(engine) as conn:
            append_events(conn, events[start : start + batch], now=NOW)


def bench_batched(count: int, batch: int, root: Path) -> bool:
    events = make_events(count, seed=2)
    bodies = encode_all(events)
    base = count / batched_baseline(bodies, batch, root / "batched-raw.db")
    engine = ledger_engine(root / "batched-ledger.db")
    try:
        ours = count / timed(lambda: append_batched(engine, events, batch))
        with engine.connect() as conn:
            assert read_head(conn).size == count
            assert [e.body for e in iter_entries(conn, start=count - 3)] == bodies[-3:]
    finally:
        engine.dispose()
    print(f"(b) batched appends: {count} entries, {batch} per transaction")
    print(f"  baseline (sqlite3 executemany + commit, for context): {base:9.0f} entries/s")
    print(f"  ledger (write_transaction + append_events):           {ours:9.0f} entries/s  "
          f"({ours / base:.2f}x)")
    print(f"  target >= 20000 entries/s: {verdict(ours >= 20_000)}")
    return ours >= 20_000


# --- (c) proof latency ----------------------------------------------------------------


def cached_log(size: int, batch: int, *, rebuild: bool) -> Path:
    """A SQLite ledger of ``size`` entries under ``bench/out/``, built when missing."""
    path = OUT / f"ledger-{size}.sqlite"
    if path.exists() and not rebuild:
        engine = ledger_engine(path)
        try:
            with engine.connect() as conn:
                if read_head(conn).size == size:
                    return path
        finally:
            engine.dispose()
    OUT.mkdir(exist_ok=True)
    partial = path.with_suffix(".building")
    leftovers = [Path(f"{partial}{suffix}") for suffix in ("", "-wal", "-shm", ".writer-lock")]
    for stale in leftovers:
        stale.unlink(missing_ok=True)
    engine = ledger_engine(partial)
    started = time.perf_counter()
    try:
        for start in range(0, size, 100_000):
            append_batched(engine, make_events(min(100_000, size - start), seed=start), batch)
        with engine.connect() as conn:  # everything into the main file before it is moved
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        engine.dispose()
    print(f"  built {path.name}: {size} entries in {time.perf_counter() - started:.1f} s "
          f"({batch} per transaction)")
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    partial.replace(path)
    for stale in leftovers[1:]:
        stale.unlink(missing_ok=True)
    return path


def read_leaves(db: sqlite3.Connection) -> list[bytes]:
    rows = db.execute("SELECT leaf_hash FROM ledger_entries ORDER BY seq")
    return [bytes(digest) for (digest,) in rows]


def roots_at(leaves: list[bytes], sizes: Iterable[int]) -> dict[int, bytes]:
    """MTH of each prefix size, from a compact range kept independently of the ledger code."""
    wanted, roots = sorted(set(sizes)), {}
    stack: list[tuple[int, bytes]] = []  # (height, hash), left to right
    n = 0
    for size in wanted:
        while n < size:
            height, digest = 0, leaves[n]
            while stack and stack[-1][0] == height:
                digest = merkle.node_hash(stack.pop()[1], digest)
                height += 1
            stack.append((height, digest))
            n += 1
        digest = stack[-1][1] if stack else merkle.EMPTY_ROOT
        for _height, left in reversed(stack[:-1]):
            digest = merkle.node_hash(left, digest)
        roots[size] = digest
    return roots


def percentiles(samples: list[float]) -> tuple[float, float]:
    """Median and 99th percentile."""
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[max(0, int(len(ordered) * 0.99) - 1)]


def measure(ops: list[Callable[[], bool]]) -> list[float]:
    """Seconds per op; every op must return True (its proof verified)."""
    times = []
    for op in ops:
        started = time.perf_counter()
        ok = op()
        times.append(time.perf_counter() - started)
        assert ok, "a proof did not verify"
    return times


Ops = list[Callable[[], bool]]


def proof_ops(conn: Connection, db: sqlite3.Connection, count: int) -> tuple[Ops, Ops]:
    """``count`` random inclusion and consistency proofs, each fetched and then verified.

    Roots come from the stored leaf hashes folded here (checked against the RFC 9162
    reference and the ledger head); each proven leaf is re-hashed from its entry bytes.
    """
    leaves = read_leaves(db)
    head, rng = len(leaves), random.Random(3)
    indices = [rng.randrange(head) for _ in range(count)]
    pairs = []
    for _ in range(count):
        new = rng.randint(2, head)
        pairs.append((rng.randint(1, new - 1), new))
    roots = roots_at(leaves, [head, *(size for pair in pairs for size in pair)])
    assert roots[head] == merkle.root(leaves) == read_head(conn).root
    select_body = "SELECT body FROM ledger_entries WHERE seq = ?"
    proven = {i: merkle.leaf_hash(db.execute(select_body, (i,)).fetchone()[0]) for i in indices}

    def inclusion(index: int) -> Callable[[], bool]:
        def op() -> bool:
            proof = inclusion_proof_at(conn, index, head, head_size=head)
            return merkle.verify_inclusion(proven[index], index, head, proof, roots[head])
        return op

    def consistency(old: int, new: int) -> Callable[[], bool]:
        def op() -> bool:
            proof = consistency_proof_at(conn, old, new, head_size=head)
            return merkle.verify_consistency(old, new, roots[old], roots[new], proof)
        return op

    return [inclusion(i) for i in indices], [consistency(o, n) for o, n in pairs]


def select_times(conn: Connection, db: sqlite3.Connection, head: int, count: int) -> tuple:
    """Seconds per single-row primary-key SELECT: raw sqlite3, and through SQLAlchemy."""
    rng = random.Random(4)
    seqs = [rng.randrange(head) for _ in range(count)]
    sql = "SELECT body FROM ledger_entries WHERE seq = ?"
    raw = [timed(lambda seq=seq: db.execute(sql, (seq,)).fetchone()) for seq in seqs]
    core = [timed(lambda seq=seq: get_entry(conn, seq)) for seq in seqs]
    return percentiles(raw), percentiles(core)


def bench_proofs(size: int, count: int, batch: int, *, rebuild: bool) -> bool:
    print(f"(c) proof latency: {size} entries, {count} random proofs of each kind, each verified")
    path = cached_log(size, batch, rebuild=rebuild)
    engine = create_db_engine(f"sqlite:///{path}")
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        with engine.connect() as conn:
            inclusions, consistencies = proof_ops(conn, db, count)
            measure(inclusions[:50] + consistencies[:50])  # warm the page cache and statements
            inc = percentiles(measure(inclusions))
            con = percentiles(measure(consistencies))
            raw, core = select_times(conn, db, size, count)
    finally:
        db.close()
        engine.dispose()
    for name, (median, p99) in (("sqlite3", raw), ("SQLAlchemy get_entry", core)):
        print(f"  baseline: primary-key SELECT, {name + ',':21} median {median * 1e3:.3f} ms  "
              f"p99 {p99 * 1e3:.3f} ms")
    for name, (median, p99) in (("inclusion", inc), ("consistency", con)):
        print(f"  {name + ' proof + verify:':44} median {median * 1e3:.3f} ms  "
              f"p99 {p99 * 1e3:.3f} ms  ({median / raw[0]:.0f}x sqlite3 SELECT)")
    ok = inc[0] <= 1e-3 and con[0] <= 1e-3
    print(f"  target median <= 1 ms: {verdict(ok)}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--single", type=int, default=2_000, help="appends for (a)")
    parser.add_argument("--batched", type=int, default=100_000, help="entries for (b)")
    parser.add_argument("--batch", type=int, default=1_000, help="entries per transaction in (b)")
    parser.add_argument("--log-size", type=int, default=1_000_000, help="log size for (c)")
    parser.add_argument("--build-batch", type=int, default=10_000,
                        help="entries per transaction when building the log for (c)")
    parser.add_argument("--proofs", type=int, default=2_000, help="proofs of each kind in (c)")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the cached log for (c)")
    parser.add_argument("--quick", action="store_true",
                        help="small sizes: 200 appends, 10,000 batched, a 20,000-entry log")
    parser.add_argument("--only", choices=["single", "batched", "proofs"], action="append",
                        help="run only these parts (repeatable)")
    args = parser.parse_args()
    if args.quick:
        args.single, args.batched, args.log_size, args.proofs = 200, 10_000, 20_000, 200
    parts = set(args.only or ["single", "batched", "proofs"])

    results = []
    with tempfile.TemporaryDirectory(prefix="dangan-bench-", dir=os.environ.get("TMPDIR")) as tmp:
        if "single" in parts:
            results.append(bench_single(args.single, Path(tmp)))
        if "batched" in parts:
            results.append(bench_batched(args.batched, args.batch, Path(tmp)))
    if "proofs" in parts:
        results.append(bench_proofs(args.log_size, args.proofs, args.build_batch,
                                    rebuild=args.rebuild))
    print(f"ledger: {sum(results)}/{len(results)} targets met")
    return 0


if __name__ == "__main__":
    sys.exit(main())

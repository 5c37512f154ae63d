"""The event log: every state change is appended here, in the caller's transaction.

Each entry is one leaf of the RFC 9162 Merkle tree (built by the ledger on top of this
log). An entry's bytes are the RFC 8785 canonical JSON of its event, its hash is the RFC
9162 §2.1.1 leaf hash SHA-256(0x00 ‖ bytes), and each event names the hash of the one
before it, so the log is also a hash chain. Sequence numbers are 0-based leaf indices
without gaps: appenders lock the single ``ledger_head`` row (SQLite serialises writers
with ``BEGIN IMMEDIATE``; PostgreSQL takes ``SELECT … FOR UPDATE``).

Events carry identifiers and hashes only, never personal data (DESIGN.md invariant 3).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, bindparam, select, update

from dangan.db.direct import DirectStatement
from dangan.db.engine import stored_time
from dangan.db.tables import ledger_entries, ledger_head
from dangan.errors import IntegrityError, NotFound
from dangan.ledger import tree
from dangan.ledger._canonical import canonical_json
from dangan.ledger.merkle import leaf_hash

#: Version of the event wire format; part of every event.
EVENT_FORMAT = 1
#: The chain's "previous hash" for entry 0.
GENESIS_PREV = b"\x00" * 32


@dataclass(frozen=True)
class LedgerEntry:
    """One appended event."""

    seq: int
    """0-based position in the log; also the Merkle leaf index."""
    kind: str
    """Event type, e.g. ``document.ingested``."""
    body: bytes
    """The canonical JSON bytes: exactly the Merkle leaf data."""
    leaf_hash: bytes
    """SHA-256(0x00 ‖ body), RFC 9162 §2.1.1."""
    prev_hash: bytes
    """Leaf hash of entry ``seq - 1`` (32 zero bytes for entry 0)."""
    created_at: datetime
    """When the entry was appended (UTC)."""


@dataclass(frozen=True)
class LogHead:
    """The log's current size and last leaf hash."""

    size: int
    """Number of entries."""
    last_hash: bytes
    """Leaf hash of the last entry, or 32 zero bytes when empty."""
    frontier: bytes = b""
    """Packed right-edge subtree hashes of the Merkle tree (:mod:`dangan.ledger.tree`)."""

    @property
    def root(self) -> bytes:
        """The Merkle tree head (RFC 9162 §2.1.1) of the whole log."""
        return tree.frontier_root(tree.unpack_frontier(self.frontier, self.size))


def format_time(moment: datetime) -> str:
    """RFC 3339 UTC with millisecond precision, as events carry it."""
    m = moment.astimezone(UTC)
    # The digits of strftime("%Y-%m-%dT%H:%M:%S."), without its locale-aware C round trip.
    return (f"{m.year}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:"
            f"{m.second:02d}.{m.microsecond // 1000:03d}Z")


def encode_event(
    *,
    seq: int,
    prev_hash: bytes,
    kind: str,
    actor: str,
    subject: Mapping[str, Any],
    at: datetime,
) -> bytes:
    """The canonical bytes of an event (RFC 8785 JSON Canonicalization Scheme)."""
    return _encode(seq, prev_hash, kind, actor, subject, format_time(at))


def _encode(
    seq: int, prev_hash: bytes, kind: str, actor: str, subject: Mapping[str, Any], time: str
) -> bytes:
    event = {
        "v": EVENT_FORMAT,
        "seq": seq,
        "prev": prev_hash.hex(),
        "type": kind,
        "time": time,
        "actor": actor,
        "subject": dict(subject),
    }
    return canonical_json(event)


# The append path runs on the driver's cursor (dangan.db.direct): SQLAlchemy's own
# per-statement work cost more than SQLite's for a durable single append.
_READ_HEAD = DirectStatement(
    select(ledger_head.c.size, ledger_head.c.last_hash, ledger_head.c.frontier).where(
        ledger_head.c.id == 1
    )
)
_LOCK_HEAD = DirectStatement(
    select(ledger_head.c.size, ledger_head.c.last_hash, ledger_head.c.frontier)
    .where(ledger_head.c.id == 1)
    .with_for_update()
)
_INSERT_ENTRIES = DirectStatement(ledger_entries.insert())
_UPDATE_HEAD = DirectStatement(
    update(ledger_head)
    .where(ledger_head.c.id == 1)
    .values(
        size=bindparam("new_size"),
        last_hash=bindparam("new_hash"),
        frontier=bindparam("new_frontier"),
    )
)


def read_head(conn: Connection, *, for_update: bool = False) -> LogHead:
    """The log head; with ``for_update`` the row stays locked until the transaction ends."""
    lock = for_update and conn.dialect.name != "sqlite"
    ((size, last_hash, frontier),) = (_LOCK_HEAD if lock else _READ_HEAD).execute(conn)
    return LogHead(size=size, last_hash=bytes(last_hash), frontier=bytes(frontier))


@dataclass(frozen=True)
class NewEvent:
    """An event to append: what happened, who did it, and to what (ids and hashes only)."""

    kind: str
    """Event type, e.g. ``document.ingested``."""
    actor: str
    """Client id, or ``system``."""
    subject: Mapping[str, Any]
    """Identifiers and hashes the event is about."""


def append_event(
    conn: Connection,
    *,
    kind: str,
    actor: str,
    subject: Mapping[str, Any],
    now: datetime,
) -> LedgerEntry:
    """Append one event inside the caller's write transaction and return the entry."""
    return append_events(conn, [NewEvent(kind=kind, actor=actor, subject=subject)], now=now)[0]


@dataclass(frozen=True)
class AppendedRun:
    """Entries appended together, and the tree they were appended to.

    With the frontier of that tree and the new leaves, every node of the grown tree that
    an inclusion proof of a new entry needs can be computed without reading the stored
    tree (:func:`dangan.ledger.tree.run_proofs`).
    """

    entries: list[LedgerEntry]
    """The new entries, in sequence order."""
    base_frontier: bytes
    """Packed frontier (:mod:`dangan.ledger.tree`) of the tree before the first of them."""


def append_events(
    conn: Connection, events: Sequence[NewEvent], *, now: datetime
) -> list[LedgerEntry]:
    """Append ``events`` in order inside the caller's write transaction.

    Locks the head once, stores every entry and every tree node above the leaves that
    the entries complete, and moves the head (size, last hash, frontier) in one update.
    """
    return append_run(conn, events, now=now).entries


def append_run(conn: Connection, events: Sequence[NewEvent], *, now: datetime) -> AppendedRun:
    """:func:`append_events`, also handing back the frontier the entries were added to."""
    head = read_head(conn, for_update=True)
    size, prev, frontier = head.size, head.last_hash, head.frontier
    time = format_time(now)  # one clock reading for the whole batch
    entries: list[LedgerEntry] = []
    nodes: list[tuple[int, bytes]] = []
    for event in events:
        body = _encode(size, prev, event.kind, event.actor, event.subject, time)
        digest = leaf_hash(body)
        entries.append(LedgerEntry(size, event.kind, body, digest, prev, now))
        frontier, completed = tree.push_packed(frontier, size, digest)
        nodes += completed
        size, prev = size + 1, digest
    run = AppendedRun(entries=entries, base_frontier=head.frontier)
    if not entries:
        return run
    if len(entries) == 1:
        _INSERT_ENTRIES.execute(conn, _entry_row(entries[0]))
    else:
        _INSERT_ENTRIES.execute_columns(
            conn,
            {
                "seq": [e.seq for e in entries],
                "kind": [e.kind for e in entries],
                "body": [e.body for e in entries],
                "leaf_hash": [e.leaf_hash for e in entries],
                "prev_hash": [e.prev_hash for e in entries],
            },
            constants={"created_at": now},
        )
    tree.store_positioned(conn, nodes)
    _UPDATE_HEAD.execute(conn, {"new_size": size, "new_hash": prev, "new_frontier": frontier})
    _note_growth(conn, head, size, frontier)
    return run


#: Where a connection keeps the trees its appends went through, as (size, packed frontier),
#: the one it grew last at the end (see :func:`grown_from`).
_GROWTH = "dangan.ledger.growth"
_GROWTH_KEPT = 8


def _note_growth(conn: Connection, head: LogHead, size: int, frontier: bytes) -> None:
    """Remember that this connection computed ``frontier`` (of ``size`` entries) by adding
    leaves to ``head``'s, and so grew every tree it had grown into ``head`` as well."""
    start = (head.size, head.frontier)
    trees = conn.info.get(_GROWTH)
    if not trees or trees[-1] != start:
        trees = [start]
    conn.info[_GROWTH] = [*trees[-_GROWTH_KEPT:], (size, frontier)]


def grown_from(conn: Connection, head: LogHead, size: int) -> bytes | None:
    """The RFC 9162 root of the tree of ``size`` entries that this connection's own
    appends grew into ``head``, if they did (else ``None``).

    ``head``'s frontier was then computed from that tree's by adding leaves, so the head
    extends that tree (RFC 9162 §2.1.4 consistency holds by construction): whoever checks
    the head against a tree of that size and root needs no proof from the store.
    """
    trees = conn.info.get(_GROWTH)
    if not trees or trees[-1] != (head.size, head.frontier):
        return None
    for grown, frontier in trees:
        if grown == size:
            return tree.frontier_root(tree.unpack_frontier(frontier, size))
    return None


def _entry_row(entry: LedgerEntry) -> dict[str, Any]:
    return {
        "seq": entry.seq,
        "kind": entry.kind,
        "body": entry.body,
        "leaf_hash": entry.leaf_hash,
        "prev_hash": entry.prev_hash,
        "created_at": entry.created_at,
    }


def get_entry(conn: Connection, seq: int) -> LedgerEntry | None:
    """The entry at ``seq``, or ``None``."""
    row = conn.execute(select(ledger_entries).where(ledger_entries.c.seq == seq)).one_or_none()
    return None if row is None else _entry(row)


def find_seq(conn: Connection, leaf: bytes) -> int:
    """The sequence number of the entry whose leaf hash is ``leaf``."""
    row = conn.execute(
        select(ledger_entries.c.seq).where(ledger_entries.c.leaf_hash == leaf)
    ).one_or_none()
    if row is None:
        raise NotFound("no ledger entry has that leaf hash")
    return row.seq


def iter_entries(conn: Connection, *, start: int = 0, batch: int = 1000) -> Iterator[LedgerEntry]:
    """Every entry from ``start`` on, in sequence order, read in batches."""
    seq = start
    while True:
        rows = conn.execute(
            select(ledger_entries)
            .where(ledger_entries.c.seq >= seq)
            .order_by(ledger_entries.c.seq)
            .limit(batch)
        ).all()
        if not rows:
            return
        for row in rows:
            yield _entry(row)
        seq = rows[-1].seq + 1


def verify_chain(conn: Connection) -> LogHead:
    """Recompute every leaf hash and chain link; raise :class:`IntegrityError` on the first break.

    Checks, for each entry: the sequence has no gap, the stored leaf hash equals
    SHA-256(0x00 ‖ body), the body names its own seq, type and the previous leaf hash,
    and finally that the head matches the last entry.
    """
    expected_seq, prev = 0, GENESIS_PREV
    for entry in iter_entries(conn):
        check_entry(entry, expected_seq, prev)
        expected_seq, prev = entry.seq + 1, entry.leaf_hash
    head = read_head(conn)
    if head.size != expected_seq or head.last_hash != prev:
        raise IntegrityError(
            f"ledger head (size {head.size}) does not match the entries (size {expected_seq})",
            seq=expected_seq,
        )
    return head


def check_entry(entry: LedgerEntry, expected_seq: int, prev: bytes) -> None:
    def broken(why: str) -> IntegrityError:
        return IntegrityError(f"ledger entry {entry.seq}: {why}", seq=entry.seq)

    if entry.seq != expected_seq:
        raise IntegrityError(f"ledger entry {expected_seq} is missing", seq=expected_seq)
    if leaf_hash(entry.body) != entry.leaf_hash:
        raise broken("stored leaf hash does not match its bytes")
    if entry.prev_hash != prev:
        raise broken("previous-hash link is broken")
    try:
        event = rfc8785_loads(entry.body)
    except ValueError as exc:
        raise broken("bytes are not canonical JSON") from exc
    if event.get("seq") != entry.seq or event.get("prev") != prev.hex():
        raise broken("event names a different position or predecessor")
    if event.get("type") != entry.kind:
        raise broken("event type differs from the indexed kind")


def rfc8785_loads(body: bytes) -> dict[str, Any]:
    """Parse event bytes and insist they are already in RFC 8785 canonical form."""
    event = json.loads(body)
    if not isinstance(event, dict) or canonical_json(event) != body:
        raise ValueError("not canonical")
    return event


def _entry(row: Any) -> LedgerEntry:
    created = stored_time(row.created_at)
    return LedgerEntry(
        seq=row.seq,
        kind=row.kind,
        body=bytes(row.body),
        leaf_hash=bytes(row.leaf_hash),
        prev_hash=bytes(row.prev_hash),
        created_at=created,
    )

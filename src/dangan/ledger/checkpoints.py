"""Signed checkpoints of the ledger, kept forever, never forked.

A checkpoint is a C2SP tlog-checkpoint signed note over (origin, tree size, root hash).
Before signing a new one, the service makes sure that the new tree extends the last tree
it signed (RFC 9162 §2.1.4), and refuses to sign rather than hand out two views of
history. When the same transaction's appends grew the head from that very tree, it does
by construction (the frontier they started from has the signed root); otherwise a
consistency proof read from the stored tree must show it, so a head or proof nodes
altered since fail. ``dangan verify-ledger`` recomputes every stored node.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from dangan.db.direct import DirectStatement
from dangan.db.engine import stored_time
from dangan.db.tables import checkpoint_timestamps, checkpoints
from dangan.errors import IntegrityError
from dangan.ledger.checkpoint import Checkpoint, sign_checkpoint
from dangan.ledger.log import grown_from, read_head
from dangan.ledger.merkle import verify_consistency
from dangan.ledger.note import NoteSigner
from dangan.ledger.tree import consistency_proof_at

_LATEST = select(checkpoints).order_by(checkpoints.c.size.desc()).limit(1)
# Signing runs once per write batch: these two run on the driver's cursor (dangan.db.direct).
_INSERT = DirectStatement(checkpoints.insert())
_LATEST_TREE = DirectStatement(
    select(checkpoints.c.size, checkpoints.c.root).order_by(checkpoints.c.size.desc()).limit(1)
)


@dataclass(frozen=True)
class StoredCheckpoint:
    """A checkpoint the service has signed."""

    size: int
    """Tree size it commits to."""
    root: bytes
    """RFC 9162 tree head of the first ``size`` entries."""
    note: str
    """The signed note text, exactly as served."""
    created_at: datetime
    """When it was signed."""


def latest_checkpoint(conn: Connection) -> StoredCheckpoint | None:
    """The checkpoint with the largest tree size, if any."""
    row = conn.execute(_LATEST).one_or_none()
    return None if row is None else _stored(row)


def checkpoint_at(conn: Connection, size: int) -> StoredCheckpoint | None:
    """The checkpoint for exactly ``size`` entries, if one was signed."""
    row = conn.execute(select(checkpoints).where(checkpoints.c.size == size)).one_or_none()
    return None if row is None else _stored(row)


def iter_checkpoints(conn: Connection, *, batch: int = 1000) -> Iterator[StoredCheckpoint]:
    """Every stored checkpoint in increasing size."""
    after = -1
    while True:
        rows = conn.execute(
            select(checkpoints)
            .where(checkpoints.c.size > after)
            .order_by(checkpoints.c.size)
            .limit(batch)
        ).all()
        if not rows:
            return
        for row in rows:
            yield _stored(row)
        after = rows[-1].size


def ensure_checkpoint(
    conn: Connection, *, signer: NoteSigner, origin: str, now: datetime
) -> StoredCheckpoint:
    """A checkpoint for the current log head, signing (and storing) one if needed.

    Runs inside a write transaction; the head row is locked so that two processes never
    sign different checkpoints for one size.
    """
    head = read_head(conn, for_update=True)
    latest = _LATEST_TREE.execute(conn)
    if latest:
        ((latest_size, latest_root),) = latest
        if latest_size == head.size:
            stored = latest_checkpoint(conn)
            assert stored is not None
            return stored
        if latest_size > head.size:
            raise IntegrityError(
                f"the log has {head.size} entries but a checkpoint for {latest_size} was signed"
            )
    root = head.root
    # RFC 9162 §2.1.4: the new tree must extend the one signed last. When this
    # transaction's appends grew the head from that very tree, it does by construction;
    # otherwise the stored tree must prove it.
    if latest and grown_from(conn, head, latest_size) != bytes(latest_root):
        proof = consistency_proof_at(conn, latest_size, head.size, head_size=head.size)
        if not verify_consistency(latest_size, head.size, bytes(latest_root), root, proof):
            raise IntegrityError(
                f"refusing to sign: the tree of size {head.size} is not consistent with "
                f"the checkpoint already signed for size {latest_size}"
            )
    note = sign_checkpoint(signer, Checkpoint(origin=origin, size=head.size, root=root))
    _INSERT.execute(conn, {"size": head.size, "root": root, "note": note, "created_at": now})
    return StoredCheckpoint(size=head.size, root=root, note=note, created_at=now)


def _stored(row: Any) -> StoredCheckpoint:
    return StoredCheckpoint(
        size=row.size, root=bytes(row.root), note=row.note, created_at=stored_time(row.created_at)
    )


def checkpoint_timestamp(
    conn: Connection, checkpoint: StoredCheckpoint, *, stamp: Callable[[bytes], bytes], now: datetime
) -> bytes:
    """The RFC 3161 time-stamp response over ``checkpoint``'s signed note, made once and kept.

    ``stamp`` turns the note's UTF-8 bytes into a DER TimeStampResp (dangan's own TSA or
    an external one). The token proves the checkpoint existed at its genTime.
    """
    row = conn.execute(
        select(checkpoint_timestamps.c.response).where(checkpoint_timestamps.c.size == checkpoint.size)
    ).one_or_none()
    if row is not None:
        return bytes(row.response)
    response = stamp(checkpoint.note.encode("utf-8"))
    conn.execute(
        checkpoint_timestamps.insert(),
        {"size": checkpoint.size, "response": response, "created_at": now},
    )
    return response

"""Verification that needs no trust in the operator: receipts offline, the whole ledger.

:func:`verify_receipt` needs only the receipt and the checkpoint verifier key.
:func:`verify_ledger` recomputes the hash chain, every stored tree node and every
checkpoint root from the stored entries, and names the first thing that differs.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, select

from dangan.db.tables import ledger_tree
from dangan.errors import DanganError, IntegrityError
from dangan.ledger import _tree, tree
from dangan.ledger.checkpoint import open_checkpoint
from dangan.ledger.checkpoints import iter_checkpoints
from dangan.ledger.log import GENESIS_PREV, check_entry, iter_entries, read_head
from dangan.ledger.merkle import leaf_hash, verify_inclusion
from dangan.ledger.note import NoteVerifier

Progress = Callable[[int], None]


class ReceiptInvalid(DanganError):
    """A receipt does not prove what it claims."""

    code = "receipt_invalid"
    title = "The receipt does not verify"
    status = 422


@dataclass(frozen=True)
class VerifiedReceipt:
    """What a verified receipt proves."""

    document_id: str
    """The document the entry records."""
    sha256: str
    """Hex SHA-256 of the recorded content."""
    seq: int
    """Position of the entry in the log."""
    tree_size: int
    """Size of the checkpointed tree that contains it."""
    origin: str
    """The log that signed the checkpoint."""


def verify_receipt(receipt: Mapping[str, Any], verifier_key: str) -> VerifiedReceipt:
    """Check a receipt offline; raise :class:`ReceiptInvalid` naming the failed step.

    1. the checkpoint note carries a valid signature from ``verifier_key`` (C2SP signed-note);
    2. its tree size equals ``ledger.tree_size``;
    3. SHA-256(0x00 ‖ ``ledger.entry``) equals ``ledger.leaf_hash`` (RFC 9162 §2.1.1);
    4. the inclusion proof takes that leaf at ``ledger.seq`` to the checkpoint's root
       (RFC 9162 §2.1.3.2);
    5. the entry records this receipt's document id, SHA-256 and size at that seq.
    """
    try:
        ledger = receipt["ledger"]
        verifier = NoteVerifier.parse(verifier_key.strip())
        checkpoint = open_checkpoint(ledger["checkpoint"], verifier)
        seq, size = int(ledger["seq"]), int(ledger["tree_size"])
        entry = ledger["entry"].encode("utf-8")
        claimed_leaf = bytes.fromhex(ledger["leaf_hash"])
        proof = [bytes.fromhex(p) for p in ledger["inclusion_proof"]]
    except DanganError as exc:
        raise ReceiptInvalid(f"checkpoint: {exc.detail}") from exc
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ReceiptInvalid(f"receipt is malformed: {exc}") from exc
    if checkpoint.size != size:
        raise ReceiptInvalid(f"checkpoint is for size {checkpoint.size}, receipt says {size}")
    if leaf_hash(entry) != claimed_leaf:
        raise ReceiptInvalid("entry does not hash to leaf_hash")
    if not verify_inclusion(claimed_leaf, seq, size, proof, checkpoint.root):
        raise ReceiptInvalid("inclusion proof does not lead to the checkpoint's root")
    _check_subject(receipt, entry, seq)
    return VerifiedReceipt(
        document_id=str(receipt["id"]),
        sha256=str(receipt["sha256"]),
        seq=seq,
        tree_size=size,
        origin=checkpoint.origin,
    )


#: Event types whose entry records a document version (and so can back a receipt).
RECEIPT_EVENTS = frozenset({"document.ingested"})
_TYPES = {"document": str, "sha256": str, "size": int, "version": int, "media_type": str}


def _check_subject(receipt: Mapping[str, Any], entry: bytes, seq: int) -> None:
    try:
        event = json.loads(entry)
        subject = event["subject"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ReceiptInvalid("entry is not a dangan event") from exc
    if event.get("type") not in RECEIPT_EVENTS or not isinstance(subject, dict):
        raise ReceiptInvalid(f"entry is a {event.get('type')!r} event, which records no document")
    if event.get("seq") != seq:
        raise ReceiptInvalid(f"entry records seq {event.get('seq')!r}, receipt claims {seq}")
    claimed = {
        "document": receipt.get("id"),
        "sha256": receipt.get("sha256"),
        "size": receipt.get("size"),
        "version": receipt.get("version"),
        "media_type": receipt.get("media_type"),
    }
    for name, kind in _TYPES.items():
        recorded = subject.get(name)
        if type(recorded) is not kind or type(claimed[name]) is not kind:
            raise ReceiptInvalid(f"{name} is missing or not a {kind.__name__}")
        if recorded != claimed[name]:
            raise ReceiptInvalid(
                f"entry records {name} {recorded!r}, receipt claims {claimed[name]!r}"
            )


def verify_ledger(
    conn: Connection,
    *,
    verifier: NoteVerifier | None = None,
    progress: Progress | None = None,
    batch: int = 5000,
) -> int:
    """Recompute chain, tree and checkpoints from the entries; return the verified size.

    Raises :class:`IntegrityError` naming the first damaged entry, node or checkpoint.
    """
    head = read_head(conn)
    pending = iter(iter_checkpoints(conn))
    next_cp = next(pending, None)
    frontier: dict[int, bytes] = {}
    size, prev, nodes_seen = 0, GENESIS_PREV, 0
    computed: list[tree.Node] = []
    for entry in iter_entries(conn, batch=batch):
        check_entry(entry, size, prev)
        computed.extend(tree.push(frontier, size, entry.leaf_hash))
        size, prev = size + 1, entry.leaf_hash
        while next_cp is not None and next_cp.size == size:
            _check_checkpoint(next_cp, frontier, verifier)
            next_cp = next(pending, None)
        if len(computed) >= batch:
            nodes_seen += _compare_nodes(conn, computed)
            computed = []
        if progress and size % 1000 == 0:
            progress(1000)
    nodes_seen += _compare_nodes(conn, computed)
    if progress:
        progress(size % 1000)
    _check_tail(conn, head, size, prev, frontier, nodes_seen, next_cp)
    return size


def _check_checkpoint(cp: Any, frontier: dict[int, bytes], verifier: NoteVerifier | None) -> None:
    if tree.frontier_root(frontier) != cp.root:
        raise IntegrityError(f"checkpoint {cp.size}: root differs from the recomputed tree",
                             checkpoint=cp.size)
    if verifier is not None:
        try:
            opened = open_checkpoint(cp.note, verifier)
        except DanganError as exc:
            raise IntegrityError(f"checkpoint {cp.size}: signature does not verify",
                                 checkpoint=cp.size) from exc
        if opened.size != cp.size or opened.root != cp.root:
            raise IntegrityError(f"checkpoint {cp.size}: note differs from its stored root",
                                 checkpoint=cp.size)


def _compare_nodes(conn: Connection, computed: list[tree.Node]) -> int:
    """Compare recomputed nodes above the leaves with the stored ones, one range read."""
    want = {_tree.node_position(level, idx): (level, idx, digest)
            for level, idx, digest in computed if level}
    if not want:
        return 0
    pos = ledger_tree.c.pos
    rows = conn.execute(
        select(pos, ledger_tree.c.hash).where(pos.between(min(want), max(want)))
    ).all()
    stored = {r.pos: bytes(r.hash) for r in rows}
    for position, (level, idx, digest) in sorted(want.items()):
        if stored.get(position) != digest:
            raise IntegrityError(f"tree node (level {level}, index {idx}) is damaged or missing",
                                 node=[level, idx])
    return len(want)


def _check_tail(conn: Connection, head: Any, size: int, prev: bytes,
                frontier: dict[int, bytes], nodes_seen: int, next_cp: Any) -> None:
    if next_cp is not None:
        raise IntegrityError(f"checkpoint {next_cp.size} is beyond the {size} entries",
                             checkpoint=next_cp.size)
    if (head.size, head.last_hash) != (size, prev):
        raise IntegrityError(f"ledger head says {head.size} entries, the log has {size}", seq=size)
    if head.frontier != tree.pack_frontier(frontier, size):
        raise IntegrityError("ledger head's tree frontier differs from the recomputed tree")
    stored_nodes = conn.execute(select(func.count()).select_from(ledger_tree)).scalar()
    if stored_nodes != nodes_seen:
        raise IntegrityError(f"the tree has {stored_nodes} stored nodes, {nodes_seen} expected")

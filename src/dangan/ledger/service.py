"""The ledger as the rest of the service uses it: checkpoints and receipt proofs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Connection

from dangan.config import Settings
from dangan.ledger.checkpoints import StoredCheckpoint, ensure_checkpoint
from dangan.ledger.keys import load_signing_key
from dangan.ledger.log import AppendedRun, LedgerEntry
from dangan.ledger.note import NoteSigner
from dangan.ledger.tree import inclusion_proofs_at, run_proofs

T = TypeVar("T")


@dataclass(frozen=True)
class Ledger:
    """The deployment's log identity: its origin and checkpoint signing key."""

    origin: str
    """Origin line of every checkpoint (C2SP tlog-checkpoint)."""
    signer: NoteSigner
    """Ed25519 signer whose key name is the origin."""

    @classmethod
    def from_settings(cls, settings: Settings) -> Ledger:
        """Load the signing key named by ``settings`` (made by ``dangan init``)."""
        origin = settings.ledger_origin
        signer = load_signing_key(settings.effective_ledger_key_file, name=origin)
        return cls(origin=origin, signer=signer)

    def verifier_key(self) -> str:
        """The signed-note verifier key (``<name>+<hex id>+<base64 key>``)."""
        return self.signer.verifier_key()

    def checkpoint(self, conn: Connection, *, now: datetime) -> StoredCheckpoint:
        """A signed checkpoint covering every entry so far (signing one when needed)."""
        return ensure_checkpoint(conn, signer=self.signer, origin=self.origin, now=now)


def receipt_proof(conn: Connection, entry: LedgerEntry, checkpoint: StoredCheckpoint) -> dict[str, Any]:
    """The ``ledger`` member of a receipt: the entry, its inclusion proof and the checkpoint.

    With only the checkpoint's verifier key, anyone can check it: the note's signature,
    SHA-256(0x00 ‖ entry) = leaf_hash, and the RFC 9162 §2.1.3.2 inclusion of leaf
    ``seq`` in the tree of ``tree_size`` whose root the checkpoint carries.
    """
    return receipt_proofs(conn, [entry], checkpoint)[0]


def receipt_proofs(
    conn: Connection,
    entries: Sequence[LedgerEntry],
    checkpoint: StoredCheckpoint,
    *,
    run: AppendedRun | None = None,
) -> list[dict[str, Any]]:
    """:func:`receipt_proof` for each of ``entries``, reading the tree once for all.

    With ``run``, the append that ended the log at the checkpoint's size, the proofs are
    computed from it instead (checked against the checkpoint's root), without a read.
    """
    # The checkpoint was signed over stored entries, so its size bounds the tree here.
    size = checkpoint.size
    seqs = [e.seq for e in entries]
    proofs = None
    if run is not None and run.entries:
        base, leaves = run.entries[0].seq, [e.leaf_hash for e in run.entries]
        proofs = run_proofs(
            run.base_frontier, base, leaves, seqs, size=size, root=checkpoint.root
        )
    if proofs is None:
        proofs = inclusion_proofs_at(conn, seqs, size, head_size=size)
    return [
        {
            "seq": entry.seq,
            "leaf_hash": entry.leaf_hash.hex(),
            "entry": entry.body.decode("utf-8"),
            "tree_size": size,
            "inclusion_proof": [node.hex() for node in proof],
            "checkpoint": checkpoint.note,
        }
        for entry, proof in zip(entries, proofs)
    ]


def with_proof(
    conn: Connection, value: tuple[T, LedgerEntry], sealed: StoredCheckpoint | None
) -> tuple[T, dict[str, Any] | None]:
    """A writer completion (see ``GroupCommitter.submit``): (thing, its entry) becomes
    (thing, the entry's receipt proof), ``None`` when the batch carried no checkpoint."""
    thing, entry = value
    return thing, receipt_proof(conn, entry, sealed) if sealed is not None else None

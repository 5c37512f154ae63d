"""Fixity audit: every object the ledger recorded is present and hashes as recorded.

The expected set comes from the ledger itself (each entry naming a ``sha256`` and
``size``), cross-checked with the ``objects`` table; the actual set is what the store
holds. An audit re-reads and re-hashes content, so it can take a sample.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from sqlalchemy import Connection, select

from dangan.db.tables import objects
from dangan.errors import DanganError
from dangan.ledger.log import iter_entries
from dangan.storage import ObjectStore


@dataclass(frozen=True)
class Finding:
    """One problem an audit found."""

    kind: str
    """``missing``, ``corrupt``, ``unreferenced``, ``unrecorded`` or ``size_mismatch``."""
    sha256: str
    """The object concerned."""
    detail: str
    """What exactly is wrong."""


@dataclass(frozen=True)
class AuditReport:
    """The outcome of an audit."""

    recorded: int
    """Objects the ledger recorded."""
    checked: int
    """Objects re-hashed."""
    sampled: bool
    """Whether only a sample was re-hashed (and unreferenced objects not looked for)."""
    findings: tuple[Finding, ...]
    """Every problem, in the order found."""

    @property
    def ok(self) -> bool:
        """No problem at all."""
        return not self.findings


def recorded_objects(conn: Connection) -> dict[str, int]:
    """``sha256 → size`` of every object a ledger entry names: a version's content
    (``sha256`` and ``size``) or a seal's image (``image_sha256`` and ``image_size``;
    entries written before ``image_size`` was recorded take the size from the objects
    table)."""
    recorded: dict[str, int] = {}
    images: dict[str, int | None] = {}
    for entry in iter_entries(conn):
        subject = json.loads(entry.body).get("subject", {})
        if isinstance(subject.get("sha256"), str) and isinstance(subject.get("size"), int):
            recorded[subject["sha256"]] = subject["size"]
        if isinstance(subject.get("image_sha256"), str):
            size = subject.get("image_size")
            images[subject["image_sha256"]] = size if isinstance(size, int) else None
    if any(size is None for size in images.values()):
        sizes = {r.sha256: r.size for r in conn.execute(select(objects.c.sha256, objects.c.size))}
        images = {sha: size if size is not None else sizes.get(sha, -1) for sha, size in images.items()}
    recorded.update({sha: size for sha, size in images.items() if size is not None})
    return recorded


def _rehash(store: ObjectStore, sha256: str) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    for chunk in store.read(sha256):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def _check_object(store: ObjectStore, sha256: str, size: int) -> Finding | None:
    try:
        if store.stat(sha256) is None:
            return Finding("missing", sha256, "recorded in the ledger but absent from the store")
        actual, actual_size = _rehash(store, sha256)
    except DanganError as exc:
        return Finding("corrupt", sha256, f"unreadable: {exc.detail}")
    if actual != sha256:
        return Finding("corrupt", sha256, f"content now hashes to {actual}")
    if actual_size != size:
        return Finding("size_mismatch", sha256, f"{actual_size} bytes, ledger says {size}")
    return None


def audit(
    conn: Connection,
    store: ObjectStore,
    *,
    sample: int | None = None,
    rng: random.Random | None = None,
    progress: Callable[[int], None] | None = None,
    recorded: dict[str, int] | None = None,
) -> AuditReport:
    """Re-hash recorded objects (all, or ``sample`` of them) and compare with the ledger.

    ``recorded`` may pass in :func:`recorded_objects` when the caller already read it.
    """
    recorded = recorded if recorded is not None else recorded_objects(conn)
    rows = {r.sha256: r.size for r in conn.execute(select(objects.c.sha256, objects.c.size))}
    findings = [
        Finding("unrecorded", sha, "in the objects table but named by no ledger entry")
        for sha in sorted(rows.keys() - recorded.keys())
    ]
    keys = sorted(recorded)
    if sample is not None and sample < len(keys):
        keys = (rng or random.SystemRandom()).sample(keys, sample)
    for sha256 in keys:
        finding = _check_object(store, sha256, recorded[sha256])
        if finding:
            findings.append(finding)
        if progress:
            progress(1)
    if sample is None:
        findings.extend(
            Finding("unreferenced", sha, "in the store but recorded by no ledger entry")
            for sha in _unreferenced(store, recorded)
        )
    return AuditReport(
        recorded=len(recorded),
        checked=len(keys),
        sampled=sample is not None and sample < len(recorded),
        findings=tuple(findings),
    )


def _unreferenced(store: ObjectStore, recorded: dict[str, int]) -> Iterator[str]:
    return iter(sorted(key for key in store.iter_keys() if key not in recorded))

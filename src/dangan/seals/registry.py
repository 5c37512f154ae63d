"""The seal registry (印章登记) and the usage log (用印记录), in the database and the ledger.

A seal belongs to one organisation and has a kind (official seal, contract seal …), an
image (an object in the store), a certificate and a key source. Its lifecycle is

    active ──suspend──▶ suspended ──reinstate──▶ active
       └────────revoke──────┴──────────▶ revoked (for good)

and every step is a ledger entry in the same transaction as the row it changes
(DESIGN.md invariant 2): ``seal.registered``, ``seal.suspended``, ``seal.reinstated``,
``seal.revoked``. Only an active seal seals; each use is a ``document.sealed`` entry and a
``seal_usage`` row keyed by that entry's sequence number.

Ledger entries carry ids, kinds and hashes only. The reason given for a status change and
the operator named on a use stay in the database.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, get_args

from sqlalchemy import Connection, select, update

from dangan.clients import Client
from dangan.db.engine import stored_time
from dangan.db.tables import clients, seal_status_changes, seal_usage, seals
from dangan.errors import Conflict, Forbidden, InvalidRequest, NotFound
from dangan.documents.ingest import INSERT_OBJECT
from dangan.ledger.log import LedgerEntry, append_event
from dangan.storage import StoredObject

#: Kinds of seal (GA 241 series: 公章, 合同专用章, 财务专用章, 发票专用章 …).
SealKind = Literal["official", "contract", "finance", "invoice", "approval", "business"]
SEAL_KINDS: tuple[str, ...] = get_args(SealKind)
#: The line under the star of a generated seal, per kind (an official seal has none).
KIND_LABELS: Mapping[str, str | None] = {
    "official": None,
    "contract": "合同专用章",
    "finance": "财务专用章",
    "invoice": "发票专用章",
    "approval": "审批专用章",
    "business": "业务专用章",
}
SealStatus = Literal["active", "suspended", "revoked"]
SealAction = Literal["suspend", "reinstate", "revoke"]
#: action → (statuses it may start from, status it leads to, ledger event).
_TRANSITIONS: Mapping[str, tuple[frozenset[str], str, str]] = {
    "suspend": (frozenset({"active"}), "suspended", "seal.suspended"),
    "reinstate": (frozenset({"suspended"}), "active", "seal.reinstated"),
    "revoke": (frozenset({"active", "suspended"}), "revoked", "seal.revoked"),
}


class SealNotActive(Conflict):
    """The seal is suspended or revoked, so it cannot seal."""

    code = "seal_not_active"
    title = "The seal is not active"


class SealTransitionRefused(Conflict):
    """The lifecycle step is not allowed from the seal's current status."""

    code = "seal_transition_refused"
    title = "The seal cannot make this lifecycle step"


@dataclass(frozen=True)
class StatusChange:
    """One lifecycle step of a seal."""

    status: str
    """The status it led to."""
    reason: str | None
    """Why, as the administrator gave it."""
    changed_by: str
    """Client id."""
    changed_at: datetime
    """When."""
    ledger_seq: int
    """The ledger entry recording it."""


@dataclass(frozen=True)
class Seal:
    """A registered seal."""

    id: str
    organisation: str
    name: str
    kind: str
    status: str
    image_sha256: str
    """The seal image (PNG with transparency), an object in the store."""
    certificate: bytes
    """The seal certificate, DER."""
    certificate_sha256: str
    key_source: dict[str, Any]
    """Where the key lives (no secrets): see :mod:`dangan.seals.keys`."""
    created_by: str
    created_at: datetime
    updated_at: datetime
    ledger_seq: int
    """The ``seal.registered`` entry."""


@dataclass(frozen=True)
class SealUse:
    """One use of a seal (a row of the usage log)."""

    ledger_seq: int
    """The ``document.sealed`` entry."""
    seal_id: str
    document_id: str
    version: int
    """The document version the sealing made."""
    client_id: str
    client_name: str
    """The approval system that asked for it."""
    operator: str | None
    """The person at that system, as it named them."""
    used_at: datetime


def check_registration(client: Client, *, organisation: str, kind: str) -> None:
    """Whether ``client`` may register a seal of ``kind`` for ``organisation``."""
    if kind not in SEAL_KINDS:
        raise InvalidRequest(f"unknown seal kind {kind!r}; known: {', '.join(SEAL_KINDS)}")
    if organisation != client.organisation:
        raise Forbidden(
            f"this API key acts for {client.organisation!r} and cannot register seals "
            f"of {organisation!r}"
        )


def register_seal(
    conn: Connection,
    *,
    seal_id: str,
    client: Client,
    organisation: str,
    name: str,
    kind: str,
    image: StoredObject,
    certificate: bytes,
    certificate_sha256: str,
    key_source: Mapping[str, Any],
    now: datetime,
) -> tuple[Seal, LedgerEntry]:
    """Record a new active seal and its ``seal.registered`` entry (caller's transaction);
    the image is already durable in the store."""
    check_registration(client, organisation=organisation, kind=kind)
    image_sha256 = image.sha256
    conn.execute(
        INSERT_OBJECT[conn.dialect.name],
        {"sha256": image.sha256, "size": image.size, "created_at": now},
    )
    entry = append_event(
        conn,
        kind="seal.registered",
        actor=client.id,
        subject={
            "seal": seal_id,
            "organisation": organisation,
            "kind": kind,
            "image_sha256": image_sha256,
            "image_size": image.size,
            "certificate_sha256": certificate_sha256,
        },
        now=now,
    )
    row = {
        "id": seal_id,
        "organisation": organisation,
        "name": name,
        "kind": kind,
        "status": "active",
        "image_sha256": image_sha256,
        "certificate": certificate,
        "certificate_sha256": certificate_sha256,
        "key_source": json.dumps(dict(key_source), sort_keys=True),
        "created_by": client.id,
        "created_at": now,
        "updated_at": now,
        "ledger_seq": entry.seq,
    }
    conn.execute(seals.insert().values(row))
    return _seal(row), entry


def change_status(
    conn: Connection,
    *,
    seal_id: str,
    action: str,
    client: Client,
    reason: str | None,
    now: datetime,
) -> tuple[Seal, LedgerEntry]:
    """Take the lifecycle step ``action``; :class:`SealTransitionRefused` when not allowed."""
    if action not in _TRANSITIONS:
        raise InvalidRequest(f"unknown seal action {action!r}")
    seal = get_seal(conn, seal_id, for_update=True)
    require_same_organisation(seal, client)
    allowed_from, status, event = _TRANSITIONS[action]
    if seal.status not in allowed_from:
        raise SealTransitionRefused(
            f"a {seal.status} seal cannot be {_PAST[action]}", seal_status=seal.status
        )
    entry = append_event(
        conn, kind=event, actor=client.id, subject={"seal": seal_id}, now=now
    )
    conn.execute(
        update(seals).where(seals.c.id == seal_id).values(status=status, updated_at=now)
    )
    conn.execute(
        seal_status_changes.insert().values(
            ledger_seq=entry.seq,
            seal_id=seal_id,
            status=status,
            reason=reason,
            changed_by=client.id,
            changed_at=now,
        )
    )
    return get_seal(conn, seal_id), entry


_PAST = {"suspend": "suspended", "reinstate": "reinstated", "revoke": "revoked"}


def require_same_organisation(seal: Seal, client: Client) -> None:
    """:class:`Forbidden` unless ``client`` acts for the seal's organisation."""
    if seal.organisation != client.organisation:
        raise Forbidden(
            f"this API key acts for {client.organisation!r}; the seal belongs to "
            f"{seal.organisation!r}"
        )


def require_active(seal: Seal) -> None:
    """:class:`SealNotActive` unless the seal may seal."""
    if seal.status != "active":
        raise SealNotActive(f"seal {seal.id} is {seal.status}", seal_status=seal.status)


def get_seal(conn: Connection, seal_id: str, *, for_update: bool = False) -> Seal:
    """A seal; :class:`NotFound` when absent."""
    query = select(seals).where(seals.c.id == seal_id)
    if for_update and conn.dialect.name != "sqlite":
        query = query.with_for_update()
    row = conn.execute(query).mappings().one_or_none()
    if row is None:
        raise NotFound(f"no seal {seal_id}")
    return _seal(row)


def list_seals(conn: Connection, *, organisation: str) -> list[Seal]:
    """The organisation's seals, oldest first."""
    rows = conn.execute(
        select(seals).where(seals.c.organisation == organisation).order_by(seals.c.id)
    ).mappings()
    return [_seal(row) for row in rows]


def status_history(conn: Connection, seal_id: str) -> list[StatusChange]:
    """Every lifecycle step of the seal after its registration, oldest first."""
    rows = conn.execute(
        select(seal_status_changes)
        .where(seal_status_changes.c.seal_id == seal_id)
        .order_by(seal_status_changes.c.ledger_seq)
    ).mappings()
    return [
        StatusChange(
            status=r["status"],
            reason=r["reason"],
            changed_by=r["changed_by"],
            changed_at=stored_time(r["changed_at"]),
            ledger_seq=r["ledger_seq"],
        )
        for r in rows
    ]


def record_use(
    conn: Connection,
    *,
    seal_id: str,
    document_id: str,
    version: int,
    client: Client,
    operator: str | None,
    entry: LedgerEntry,
) -> None:
    """Log one use of a seal under its ``document.sealed`` entry (caller's transaction)."""
    conn.execute(
        seal_usage.insert().values(
            ledger_seq=entry.seq,
            seal_id=seal_id,
            document_id=document_id,
            version=version,
            client_id=client.id,
            operator=operator,
            used_at=entry.created_at,
        )
    )


def list_usage(
    conn: Connection, seal_id: str, *, limit: int, after: int | None = None
) -> list[SealUse]:
    """Uses of the seal in ledger order, ``limit`` at most, after sequence number ``after``."""
    query = (
        select(seal_usage, clients.c.name.label("client_name"))
        .join(clients, clients.c.id == seal_usage.c.client_id)
        .where(seal_usage.c.seal_id == seal_id)
        .order_by(seal_usage.c.ledger_seq)
        .limit(limit)
    )
    if after is not None:
        query = query.where(seal_usage.c.ledger_seq > after)
    return [
        SealUse(
            ledger_seq=r["ledger_seq"],
            seal_id=r["seal_id"],
            document_id=r["document_id"],
            version=r["version"],
            client_id=r["client_id"],
            client_name=r["client_name"],
            operator=r["operator"],
            used_at=stored_time(r["used_at"]),
        )
        for r in conn.execute(query).mappings()
    ]


def _seal(row: Mapping[str, Any]) -> Seal:
    return Seal(
        id=row["id"],
        organisation=row["organisation"],
        name=row["name"],
        kind=row["kind"],
        status=row["status"],
        image_sha256=row["image_sha256"],
        certificate=bytes(row["certificate"]),
        certificate_sha256=row["certificate_sha256"],
        key_source=json.loads(row["key_source"]),
        created_by=row["created_by"],
        created_at=stored_time(row["created_at"]),
        updated_at=stored_time(row["updated_at"]),
        ledger_seq=row["ledger_seq"],
    )

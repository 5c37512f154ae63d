"""Issued licences in the database and the ledger, and their lifecycle.

    active ──suspend──▶ suspended ──reinstate──▶ active
      │                    │
      ├──(end date passes: expire)──▶ expired
      └──────revoke───────┴──────────────┴──▶ revoked (for good)

Every step is a ledger entry in the same transaction as the row it changes (DESIGN.md
invariant 2): ``licence.issued``, ``licence.suspended``, ``licence.reinstated``,
``licence.revoked``, ``licence.expired``. Entries carry ids, codes and hashes only; the
holder's name and number and the free-text reason stay in the database.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any, Literal

from sqlalchemy import Connection, bindparam, select, update

from dangan.db.direct import AutocommitReader, DirectStatement
from dangan.db.engine import stored_time
from dangan.db.tables import licence_status_changes, licences
from dangan.errors import Conflict, Forbidden, InvalidRequest, NotFound
from dangan.ledger.log import LedgerEntry, append_event

LicenceStatus = Literal["active", "suspended", "revoked", "expired"]
LicenceAction = Literal["suspend", "reinstate", "revoke"]
#: action → (statuses it may start from, status it leads to, ledger event).
_TRANSITIONS: Mapping[str, tuple[frozenset[str], str, str]] = {
    "suspend": (frozenset({"active"}), "suspended", "licence.suspended"),
    "reinstate": (frozenset({"suspended"}), "active", "licence.reinstated"),
    "revoke": (frozenset({"active", "suspended", "expired"}), "revoked", "licence.revoked"),
    "expire": (frozenset({"active", "suspended"}), "expired", "licence.expired"),
}
#: Reason codes an issuer gives for a step (the free text is optional).
REASON_CODES: Mapping[str, tuple[str, ...]] = {
    "suspend": ("under_investigation", "rectification_ordered", "holder_request", "other"),
    "reinstate": ("rectified", "investigation_closed", "suspended_in_error", "other"),
    "revoke": (
        "issued_in_error",
        "obtained_by_fraud",
        "holder_request",
        "superseded",
        "business_ceased",
        "penalty",
        "other",
    ),
}


def status_on(status: str, valid_until: date | None, today: date) -> str:
    """The status on ``today``: an active or suspended licence past its last day is
    expired even before the expiry sweep records it."""
    if status in ("active", "suspended") and valid_until is not None and today > valid_until:
        return "expired"
    return status


class LicenceTransitionRefused(Conflict):
    code = "licence_transition_refused"
    title = "The licence cannot make this lifecycle step"


@dataclass(frozen=True)
class Licence:
    """An issued licence."""

    id: str
    """Random identifier (UUIDv7) used by the API."""
    identifier: str
    """The electronic-licence identifier printed on it (1.2.156.3005.2…)."""
    type_code: str
    organisation: str
    """The issuing organisation."""
    holder_name: str
    holder_id_type: str
    holder_id_masked: str
    """The holder's ID number, masked; the full number is only in the PDF."""
    fields: dict[str, Any]
    """The type-specific fields."""
    valid_from: date
    valid_until: date | None
    """Last day of validity; ``None``: no end date (长期)."""
    status: str
    """Stored status: active, suspended, revoked or expired."""
    document_id: str
    """The archived licence PDF."""
    pdf_sha256: str
    """SHA-256 of the issued (sealed) PDF."""
    token: str
    """The QR token (base32 text)."""
    issued_by: str
    issued_at: datetime
    updated_at: datetime
    ledger_seq: int
    """The ``licence.issued`` entry."""

    def status_on(self, today: date) -> str:
        """The status on ``today`` (:func:`status_on`)."""
        return status_on(self.status, self.valid_until, today)


@dataclass(frozen=True)
class StatusChange:
    """One lifecycle step of a licence."""

    status: str
    reason_code: str | None
    reason: str | None
    changed_by: str
    """Client id, or ``system`` for the expiry sweep."""
    changed_at: datetime
    ledger_seq: int


def insert_licence(conn: Connection, row: Mapping[str, Any], *, actor: str, now: datetime,
                   subject: Mapping[str, Any]) -> tuple[Licence, LedgerEntry]:
    """Record an issued licence and its ``licence.issued`` entry (caller's transaction)."""
    entry = append_event(conn, kind="licence.issued", actor=actor, subject=subject, now=now)
    values = {
        **row,
        "fields": json.dumps(row["fields"], ensure_ascii=False, sort_keys=True),
        "valid_from": row["valid_from"].isoformat(),
        "valid_until": row["valid_until"].isoformat() if row["valid_until"] else None,
        "status": "active",
        "issued_at": now,
        "updated_at": now,
        "ledger_seq": entry.seq,
    }
    conn.execute(licences.insert().values(values))
    return _licence(values), entry


def get_licence(conn: Connection, licence_id: str, *, for_update: bool = False) -> Licence:
    """The licence with API id ``licence_id``; :class:`NotFound` otherwise."""
    query = select(licences).where(licences.c.id == licence_id)
    if for_update and conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = conn.execute(query).mappings().first()
    if row is None:
        raise NotFound(f"no licence {licence_id}")
    return _licence(row)


#: What public verification reads: plain text columns only, on the driver's cursor
#: (dangan.db.direct) — every scan runs it.
_PUBLIC_VIEW = DirectStatement(
    select(
        licences.c.type_code,
        licences.c.organisation,
        licences.c.valid_from,
        licences.c.valid_until,
        licences.c.status,
        licences.c.pdf_sha256,
        licences.c.token,
    ).where(licences.c.identifier == bindparam("identifier"))
)


@dataclass(frozen=True)
class PublicRow:
    """The columns public verification needs of a licence."""

    type_code: str
    organisation: str
    valid_from: date
    valid_until: date | None
    status: str
    pdf_sha256: str
    token: str

    def status_on(self, today: date) -> str:
        """The status on ``today`` (:func:`status_on`)."""
        return status_on(self.status, self.valid_until, today)


def public_row(reader: AutocommitReader, identifier: str) -> PublicRow | None:
    """The public columns of the licence with ``identifier``, if any."""
    rows = reader.rows(_PUBLIC_VIEW, {"identifier": identifier})
    if not rows:
        return None
    type_code, organisation, valid_from, valid_until, status, pdf_sha256, token = rows[0]
    return PublicRow(
        type_code, organisation, date.fromisoformat(valid_from),
        date.fromisoformat(valid_until) if valid_until else None, status, pdf_sha256, token,
    )


def find_by_holder(
    conn: Connection, holder_key: str, *, type_code: str | None = None, limit: int = 100
) -> list[Licence]:
    """Licences of the holder whose keyed hash is ``holder_key``, newest first."""
    query = select(licences).where(licences.c.holder_key == holder_key)
    if type_code is not None:
        query = query.where(licences.c.type_code == type_code)
    rows = conn.execute(query.order_by(licences.c.issued_at.desc()).limit(limit)).mappings()
    return [_licence(r) for r in rows]


def change_status(
    conn: Connection,
    *,
    licence_id: str,
    action: str,
    actor: str,
    reason_code: str | None,
    reason: str | None,
    now: datetime,
    today: date,
    organisation: str | None,
) -> tuple[Licence, LedgerEntry]:
    """Make one lifecycle step (caller's transaction) for ``organisation``, which must
    have issued the licence (``None``: the service's own expiry sweep);
    :class:`LicenceTransitionRefused` when the step does not start from its status."""
    if action not in _TRANSITIONS:
        raise InvalidRequest(f"unknown action {action!r}")
    if action in REASON_CODES and reason_code not in REASON_CODES[action]:
        raise InvalidRequest(
            f"reason_code must be one of {', '.join(REASON_CODES[action])} to {action} a licence"
        )
    current = get_licence(conn, licence_id, for_update=True)
    if organisation is not None and current.organisation != organisation:
        raise Forbidden(
            f"this API key acts for {organisation!r}; licence {licence_id} was issued by "
            f"{current.organisation!r}"
        )
    sources, target, event = _TRANSITIONS[action]
    effective = current.status_on(today)
    if action == "reinstate" and effective == "expired":
        raise LicenceTransitionRefused("the licence's validity has ended; it cannot be reinstated")
    if current.status not in sources:
        raise LicenceTransitionRefused(
            f"licence {licence_id} is {current.status}; it cannot {action} "
            f"(a revoked licence stays revoked)"
        )
    entry = append_event(
        conn,
        kind=event,
        actor=actor,
        subject={"licence": licence_id, "identifier": current.identifier,
                 **({"reason_code": reason_code} if reason_code else {})},
        now=now,
    )
    conn.execute(
        update(licences).where(licences.c.id == licence_id).values(status=target, updated_at=now)
    )
    conn.execute(
        licence_status_changes.insert().values(
            ledger_seq=entry.seq, licence_id=licence_id, status=target,
            reason_code=reason_code, reason=reason, changed_by=actor, changed_at=now,
        )
    )
    return replace(current, status=target, updated_at=now), entry


def due_for_expiry(conn: Connection, *, today: date, limit: int = 500) -> list[str]:
    """Ids of active or suspended licences whose last day is before ``today``."""
    rows = conn.execute(
        select(licences.c.id)
        .where(licences.c.status.in_(("active", "suspended")))
        .where(licences.c.valid_until < today.isoformat())
        .order_by(licences.c.valid_until)
        .limit(limit)
    )
    return [r.id for r in rows]


def status_history(conn: Connection, licence_id: str) -> list[StatusChange]:
    """The licence's lifecycle steps, oldest first."""
    rows = conn.execute(
        select(licence_status_changes)
        .where(licence_status_changes.c.licence_id == licence_id)
        .order_by(licence_status_changes.c.ledger_seq)
    ).mappings()
    return [
        StatusChange(r["status"], r["reason_code"], r["reason"], r["changed_by"],
                     stored_time(r["changed_at"]), r["ledger_seq"])
        for r in rows
    ]




def _licence(row: Mapping[str, Any]) -> Licence:
    until = row["valid_until"]
    return Licence(
        id=row["id"],
        identifier=row["identifier"],
        type_code=row["type_code"],
        organisation=row["organisation"],
        holder_name=row["holder_name"],
        holder_id_type=row["holder_id_type"],
        holder_id_masked=row["holder_id_masked"],
        fields=json.loads(row["fields"]),
        valid_from=date.fromisoformat(row["valid_from"]),
        valid_until=date.fromisoformat(until) if until else None,
        status=row["status"],
        document_id=row["document_id"],
        pdf_sha256=row["pdf_sha256"],
        token=row["token"],
        issued_by=row["issued_by"],
        issued_at=stored_time(row["issued_at"]),
        updated_at=stored_time(row["updated_at"]),
        ledger_seq=row["ledger_seq"],
    )

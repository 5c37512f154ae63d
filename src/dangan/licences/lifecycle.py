"""Managing issued licences: lifecycle steps, the expiry sweep, and finding licences for
departments that reuse them instead of asking applicants for paper copies."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection

from dangan.clients import Client
from dangan.errors import InvalidRequest
from dangan.ledger.service import with_proof
from dangan.licences import records, types
from dangan.licences.holders import HOLDER_ID_TYPES
from dangan.licences.records import Licence, LicenceTransitionRefused
from dangan.licences.service import LicenceService
from dangan.licences.types import LicenceType
from dangan.seals import registry

log = logging.getLogger("dangan.licences")


def change_status(
    service: LicenceService,
    client: Client,
    licence_id: str,
    *,
    action: str,
    reason_code: str | None,
    reason: str | None,
) -> tuple[Licence, dict[str, Any] | None]:
    """Suspend, reinstate or revoke (blocking); (the licence after, its ledger proof).
    Only the issuing organisation changes a licence's status."""
    if reason is not None and len(reason) > 1000:
        raise InvalidRequest("reason must be at most 1000 characters")

    def job(conn: Connection) -> tuple[Licence, Any]:
        now = service.backends.clock()
        return records.change_status(
            conn, licence_id=licence_id, action=action, actor=client.id,
            reason_code=reason_code, reason=reason, now=now, today=service.today(now),
            organisation=client.organisation,
        )

    return service.backends.writer.run(job, complete=with_proof)


def expire_due(service: LicenceService) -> int:
    """Record ``licence.expired`` for every active or suspended licence past its last day
    (blocking); returns how many. Safe to run in several processes at once."""
    expired = 0
    while True:
        now = service.backends.clock()
        with service.backends.engine.connect() as conn:
            due = records.due_for_expiry(conn, today=service.today(now))
        if not due:
            return expired
        for licence_id in due:
            try:
                service.backends.writer.run(
                    lambda conn, lid=licence_id, at=now: records.change_status(
                        conn, licence_id=lid, action="expire", actor="system",
                        reason_code=None, reason=None, now=at, today=service.today(at),
                        organisation=None,
                    )
                )
                expired += 1
            except LicenceTransitionRefused:
                pass  # another process expired (or someone revoked) it meanwhile
        log.info("expired licences", extra={"count": len(due)})


def get_licence(service: LicenceService, licence_id: str) -> tuple[Licence, list[records.StatusChange]]:
    """A licence and its lifecycle steps (blocking); any ``licences:read`` caller may read
    it, since departments reuse licences issued elsewhere."""
    with service.backends.engine.connect() as conn:
        return records.get_licence(conn, licence_id), records.status_history(conn, licence_id)


def find_by_holder(
    service: LicenceService, *, id_type: str, id_number: str, type_code: str | None = None
) -> list[Licence]:
    """Licences of a holder, found by the keyed hash of the ID number (blocking)."""
    if id_type not in HOLDER_ID_TYPES:
        raise InvalidRequest(f"id_type must be one of {', '.join(HOLDER_ID_TYPES)}")
    if not 2 <= len(id_number.strip()) <= 40:
        raise InvalidRequest("id_number must be 2 to 40 characters")
    key = service.holder_index.key(id_type, id_number)
    with service.backends.engine.connect() as conn:
        return records.find_by_holder(conn, key, type_code=type_code)


def register_type(
    service: LicenceService, client: Client, definition: Mapping[str, Any], seal_id: str
) -> tuple[LicenceType, dict[str, Any] | None]:
    """Register a licence type sealed with ``seal_id`` (blocking); the seal must be an
    active seal of the type's issuing organisation."""

    def job(conn: Connection) -> tuple[LicenceType, Any]:
        seal = registry.get_seal(conn, seal_id, for_update=True)
        registry.require_same_organisation(seal, client)
        registry.require_active(seal)
        return types.register_type(
            conn, definition=definition, seal_id=seal_id, client=client,
            now=service.backends.clock(),
        )

    return service.backends.writer.run(job, complete=with_proof)

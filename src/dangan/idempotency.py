"""Idempotent retries: a client's ``Idempotency-Key`` maps to the answer it first got.

Approval systems retry writes whose answer they did not receive. A key names one request
of one client: the same request again gets the stored answer (no second write, no second
ledger entry); another request under the same key is :class:`IdempotencyConflict`. What
counts as "the same request" is the fingerprint the route computes (:func:`fingerprint`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, TypeVar

import rfc8785
from sqlalchemy import Connection, select, update
from sqlalchemy.exc import IntegrityError as SQLIntegrityError

from dangan.db.tables import idempotency_keys
from dangan.errors import IdempotencyConflict

_INSERT = idempotency_keys.insert()
T = TypeVar("T")


def fingerprint(request: Mapping[str, Any]) -> str:
    """Hex SHA-256 of the request's canonical JSON (RFC 8785)."""
    return hashlib.sha256(rfc8785.dumps(dict(request))).hexdigest()


def find_replay(conn: Connection, *, client_id: str, key: str, fingerprint: str) -> dict | None:
    """The stored answer for a retried request, ``None`` for a new key.

    Raises :class:`IdempotencyConflict` when the key was used for a different request.
    """
    row = conn.execute(
        select(idempotency_keys.c.request_hash, idempotency_keys.c.response).where(
            idempotency_keys.c.client_id == client_id, idempotency_keys.c.key == key
        )
    ).one_or_none()
    if row is None:
        return None
    if row.request_hash != fingerprint:
        raise IdempotencyConflict(
            "this Idempotency-Key was already used with different content or metadata"
        )
    return json.loads(row.response)


def remember(
    conn: Connection,
    *,
    client_id: str,
    key: str,
    fingerprint: str,
    response: Mapping[str, Any],
    now: datetime,
) -> None:
    """Claim ``key`` for this request (caller's transaction); a concurrent claim of the
    same key fails on the primary key."""
    conn.execute(
        _INSERT,
        {
            "client_id": client_id,
            "key": key,
            "request_hash": fingerprint,
            "response": json.dumps(response),
            "created_at": now,
        },
    )


def stored_response(conn: Connection, *, client_id: str, key: str) -> dict[str, Any]:
    """The answer kept under ``key``."""
    row = conn.execute(
        select(idempotency_keys.c.response).where(
            idempotency_keys.c.client_id == client_id, idempotency_keys.c.key == key
        )
    ).one()
    return json.loads(row.response)


def store_response(
    conn: Connection, *, client_id: str, key: str, response: Mapping[str, Any]
) -> None:
    """Replace the answer kept under ``key`` (with the final one, proofs included)."""
    conn.execute(
        update(idempotency_keys)
        .where(idempotency_keys.c.client_id == client_id, idempotency_keys.c.key == key)
        .values(response=json.dumps(response))
    )


def idempotent_write(
    *,
    client_id: str,
    key: str | None,
    fingerprint: str,
    write: Callable[[Connection], T],
    respond: Callable[[Connection, T, Any], dict[str, Any]],
    clock: Callable[[], datetime],
) -> tuple[
    Callable[[Connection], T | None],
    Callable[[Connection, T | None, Any], tuple[dict[str, Any], bool]],
]:
    """A writer job and its completion (see :meth:`GroupCommitter.submit`) that run
    ``write`` once per ``key``: a retry gets the stored answer; (answer, replayed).

    ``respond(conn, value, sealed)`` makes the answer once the batch is sealed; it is
    kept under ``key`` so that a retry gets it back byte for byte.
    """

    def job(conn: Connection) -> T | None:
        if key is None:
            return write(conn)
        if find_replay(conn, client_id=client_id, key=key, fingerprint=fingerprint) is not None:
            return None  # a retry of this request landed first
        try:
            # A savepoint: losing the race for the key to another process leaves the
            # transaction usable for reading the winner's answer.
            with conn.begin_nested():
                value = write(conn)
                remember(
                    conn, client_id=client_id, key=key, fingerprint=fingerprint,
                    response={}, now=clock(),
                )
                return value
        except SQLIntegrityError:
            if find_replay(conn, client_id=client_id, key=key, fingerprint=fingerprint) is None:
                raise
            return None

    def complete(conn: Connection, value: T | None, sealed: Any) -> tuple[dict[str, Any], bool]:
        if value is None:
            assert key is not None
            return stored_response(conn, client_id=client_id, key=key), True
        answer = respond(conn, value, sealed)
        if key is not None:
            store_response(conn, client_id=client_id, key=key, response=answer)
        return answer, False

    return job, complete

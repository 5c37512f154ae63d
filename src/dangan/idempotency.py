"""Idempotent retries: a client's ``Idempotency-Key`` maps to the answer it first got.

Approval systems retry writes whose answer they did not receive. A key names one request
of one client: the same request again gets the stored answer (no second write, no second
ledger entry); another request under the same key is :class:`IdempotencyConflict`. What
counts as "the same request" is the fingerprint the route computes (:func:`fingerprint`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import rfc8785
from sqlalchemy import Connection, select, update

from dangan.db.tables import idempotency_keys
from dangan.errors import IdempotencyConflict

_INSERT = idempotency_keys.insert()


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

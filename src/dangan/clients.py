"""API clients (approval systems): creation, bearer-key authentication, scopes.

A key is shown once at creation and stored only as its SHA-256: keys carry 256 bits
from the OS CSPRNG, so a slow password hash would add nothing but latency.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, select, update

from dangan.db.engine import write_transaction
from dangan.db.tables import clients
from dangan.errors import Forbidden, InvalidRequest, NotFound, Unauthenticated
from dangan.ids import new_id
from dangan.ledger.log import append_event

#: Every scope a client can hold. Later capabilities add theirs here.
KNOWN_SCOPES = frozenset(
    {
        "documents:read",
        "documents:write",
        "documents:sign",
        "seal:use",
        "seals:admin",
        "licences:issue",
        "licences:read",
        "archive:read",
        "archive:write",
        "ledger:read",
    }
)
KEY_PREFIX = "dgn_"


@dataclass(frozen=True)
class Client:
    """An authenticated caller."""

    id: str
    """Random identifier (UUIDv7)."""
    name: str
    """Human name of the system, e.g. "Shanghai approval platform"."""
    organisation: str
    """Organisation the system acts for."""
    scopes: frozenset[str]
    """What the client may do."""

    def require(self, scope: str) -> None:
        """Raise :class:`Forbidden` unless the client holds ``scope``."""
        if scope not in self.scopes:
            raise Forbidden(f"this API key lacks the scope {scope!r}", scope=scope)


@dataclass(frozen=True)
class NewClient:
    """A freshly created client and its key (the only time the key is visible)."""

    client: Client
    """The stored client."""
    api_key: str
    """The bearer key to hand to the client system."""


def _hash_key(api_key: str) -> bytes:
    return hashlib.sha256(api_key.encode()).digest()


def parse_scopes(scopes: Iterable[str]) -> frozenset[str]:
    """Validate scope names; unknown ones are an error, not silently dropped."""
    wanted = frozenset(s.strip() for s in scopes if s.strip())
    unknown = sorted(wanted - KNOWN_SCOPES)
    if unknown:
        raise InvalidRequest(
            f"unknown scope(s): {', '.join(unknown)}; known: {', '.join(sorted(KNOWN_SCOPES))}"
        )
    if not wanted:
        raise InvalidRequest("a client needs at least one scope")
    return wanted


def create_client(
    engine: Engine, *, name: str, organisation: str, scopes: Iterable[str], now: datetime
) -> NewClient:
    """Create a client with a new random key, recording ``client.created`` in the ledger."""
    if not name.strip() or not organisation.strip():
        raise InvalidRequest("client name and organisation must not be empty")
    granted = parse_scopes(scopes)
    api_key = KEY_PREFIX + secrets.token_urlsafe(32)
    client = Client(id=new_id(now), name=name, organisation=organisation, scopes=granted)
    with write_transaction(engine) as conn:
        conn.execute(
            clients.insert().values(
                id=client.id,
                name=name,
                organisation=organisation,
                scopes=" ".join(sorted(granted)),
                key_hash=_hash_key(api_key),
                key_prefix=api_key[: len(KEY_PREFIX) + 6],
                created_at=now,
            )
        )
        append_event(
            conn,
            kind="client.created",
            actor="system",
            subject={"client": client.id, "scopes": sorted(granted)},
            now=now,
        )
    return NewClient(client=client, api_key=api_key)


def authenticate(conn: Connection, api_key: str | None) -> Client:
    """The active client holding ``api_key``; :class:`Unauthenticated` otherwise."""
    if not api_key or not api_key.startswith(KEY_PREFIX):
        raise Unauthenticated()
    row = conn.execute(
        select(clients).where(clients.c.key_hash == _hash_key(api_key))
    ).one_or_none()
    if row is None or row.revoked_at is not None:
        raise Unauthenticated()
    return _client(row)


def list_clients(conn: Connection) -> list[tuple[Client, str, datetime | None]]:
    """All clients with their key prefix and revocation time, oldest first."""
    rows = conn.execute(select(clients).order_by(clients.c.id)).all()
    return [(_client(r), r.key_prefix, r.revoked_at) for r in rows]


def revoke_client(engine: Engine, client_id: str, *, now: datetime) -> None:
    """Revoke a client's key for good, recording ``client.revoked``."""
    with write_transaction(engine) as conn:
        result = conn.execute(
            update(clients)
            .where(clients.c.id == client_id, clients.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        if result.rowcount != 1:
            raise NotFound(f"no active client {client_id}")
        append_event(
            conn, kind="client.revoked", actor="system", subject={"client": client_id}, now=now
        )


def _client(row: object) -> Client:
    return Client(
        id=row.id,  # type: ignore[attr-defined]
        name=row.name,  # type: ignore[attr-defined]
        organisation=row.organisation,  # type: ignore[attr-defined]
        scopes=frozenset(row.scopes.split()),  # type: ignore[attr-defined]
    )


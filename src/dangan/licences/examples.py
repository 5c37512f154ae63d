"""The example licence types shipped with dangan, registered by ``dangan serve`` so that
a new deployment can issue a licence at once (``DANGAN_LOAD_EXAMPLE_LICENCE_TYPES``).

Each example names its issuing organisation and a seal; when that organisation has no
active seal of that name, a development seal is registered for it. Both registrations
are made by a client created for the purpose and revoked straight after, so the ledger
says who did it and no key is left lying around.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select

from dangan.bootstrap import Backends
from dangan.clients import Client, create_client, revoke_client
from dangan.config import Settings
from dangan.db.tables import licence_types
from dangan.licences import types
from dangan.seals import registry
from dangan.seals.service import SealingService

log = logging.getLogger("dangan.licences")


def load_example_types(settings: Settings, backends: Backends) -> list[str]:
    """Register the missing example types; returns the codes registered."""
    with backends.engine.connect() as conn:
        known = {r.code for r in conn.execute(select(licence_types.c.code))}
    missing = [d for d in types.example_definitions() if d["code"] not in known]
    if not missing:
        return []
    sealing = SealingService(settings=settings, backends=backends)
    registered = []
    try:
        for definition in missing:
            client = _loader_client(backends, definition["organisation"])
            try:
                seal_id = _seal_for(sealing, backends, client, definition["seal"])
                backends.writer.run(
                    lambda conn, d=definition, s=seal_id, c=client: types.register_type(
                        conn, definition=d, seal_id=s, client=c, now=backends.clock()
                    )
                )
            finally:
                revoke_client(backends.engine, client.id, now=backends.clock())
            registered.append(definition["code"])
            log.info("example licence type registered", extra={"type": definition["code"]})
    finally:
        sealing.close()
    return registered


def _loader_client(backends: Backends, organisation: str) -> Client:
    new = create_client(
        backends.engine,
        name="dangan example licence types",
        organisation=organisation,
        scopes=["seals:admin", "licences:issue"],
        now=backends.clock(),
    )
    return new.client


def _seal_for(
    sealing: SealingService, backends: Backends, client: Client, wanted: dict[str, Any]
) -> str:
    """The organisation's active seal named ``wanted["name"]``, registered when missing."""
    with backends.engine.connect() as conn:
        for seal in registry.list_seals(conn, organisation=client.organisation):
            if seal.name == wanted["name"] and seal.status == "active":
                return seal.id
    seal, _proof = sealing.register(
        client,
        organisation=client.organisation,
        name=wanted["name"],
        kind=wanted.get("kind", "approval"),
        image=None,
        key={"type": "dev", "key_type": "p256"},
    )
    return seal.id

"""Expiry: a licence past its last day shows as expired at once, and the sweep records
``licence.expired`` in the ledger exactly once, after which it cannot be reinstated."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from dangan.bootstrap import open_backends
from dangan.clients import Client
from dangan.config import Settings
from dangan.db.tables import ledger_entries
from dangan.licences.lifecycle import change_status, expire_due
from dangan.licences.records import Licence, LicenceTransitionRefused
from dangan.licences.service import IssueRequest, LicenceService
from dangan.licences.verification import verify_public
from dangan.seals.service import SealingService
from tests.conftest import make_client
from tests.licences.conftest import HOLDER_USCC, ISSUER, food_licence


class Clock:
    """A clock the test moves."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _service(settings: Settings, backends) -> LicenceService:
    return LicenceService.from_settings(
        settings, backends=backends, sealing=SealingService(settings=settings, backends=backends)
    )


def test_status_on_a_day() -> None:
    licence = Licence(
        id="x", identifier="i", type_code="SPJY", organisation="o", holder_name="h",
        holder_id_type="uscc", holder_id_masked="m", fields={}, valid_from=date(2026, 1, 1),
        valid_until=date(2026, 12, 31), status="suspended", document_id="d", pdf_sha256="s",
        token="t", issued_by="c", issued_at=datetime(2026, 1, 1, tzinfo=UTC),
        updated_at=datetime(2026, 1, 1, tzinfo=UTC), ledger_seq=1,
    )
    assert licence.status_on(date(2026, 12, 31)) == "suspended"
    assert licence.status_on(date(2027, 1, 1)) == "expired"
    assert Licence(**{**licence.__dict__, "status": "revoked"}).status_on(date(2027, 1, 1)) == "revoked"
    assert Licence(**{**licence.__dict__, "valid_until": None}).status_on(date(2999, 1, 1)) == "suspended"


def test_expiry_is_shown_then_recorded_once(settings: Settings, backends, examples: list[str]) -> None:
    new = make_client(backends, "licences:issue", org=ISSUER)
    client: Client = new.client
    service = _service(settings, backends)
    today = service.today()
    request = IssueRequest(
        type_code="SPJY",
        holder_name="示范市张小明餐饮有限公司",
        holder_id_type="uscc",
        holder_id_number=HOLDER_USCC,
        fields=food_licence()["fields"],
        valid_until=today,
    )
    answer, _ = asyncio.run(service.issue(client, request))
    token = answer["verification_url"].rsplit("/", 1)[1]
    assert verify_public(service, token).status == "valid"

    clock = Clock(datetime.now(UTC) + timedelta(days=2))
    later = open_backends(settings, clock=clock)
    try:
        after = _service(settings, later)
        # Shown as expired before the sweep has run ...
        assert verify_public(after, token).status == "expired"
        assert expire_due(after) == 1
        assert expire_due(after) == 0
        with later.engine.connect() as conn:
            kinds = [r.kind for r in conn.execute(select(ledger_entries.c.kind))]
        assert kinds.count("licence.expired") == 1
        assert verify_public(after, token).status == "expired"
        with pytest.raises(LicenceTransitionRefused):
            change_status(after, client, answer["id"], action="reinstate",
                          reason_code="rectified", reason=None)
        # ... and an expired licence can still be revoked.
        revoked, proof = change_status(after, client, answer["id"], action="revoke",
                                       reason_code="obtained_by_fraud", reason=None)
        assert revoked.status == "revoked" and proof is not None
        assert verify_public(after, token).status == "revoked"
    finally:
        later.close()

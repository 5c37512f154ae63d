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


def test_the_last_day_ends_at_local_midnight(settings: Settings, backends, examples: list[str]) -> None:
    """Asia/Shanghai is UTC+8: the last day ends at 16:00 UTC."""
    client = make_client(backends, "licences:issue", org=ISSUER).client
    service = _service(settings, backends)
    last_day = service.today()
    answer, _ = asyncio.run(service.issue(client, IssueRequest(
        type_code="SPJY", holder_name="示范市张小明餐饮有限公司", holder_id_type="uscc",
        holder_id_number=HOLDER_USCC, fields=food_licence()["fields"], valid_until=last_day,
    )))
    token = answer["verification_url"].rsplit("/", 1)[1]
    for moment, status in (
        (datetime(last_day.year, last_day.month, last_day.day, 15, 59, 59, tzinfo=UTC), "valid"),
        (datetime(last_day.year, last_day.month, last_day.day, 16, 0, 0, tzinfo=UTC), "expired"),
    ):
        later = open_backends(settings, clock=Clock(moment))
        try:
            assert verify_public(_service(settings, later), token).status == status, moment
        finally:
            later.close()


def test_no_issuing_with_a_qr_key_that_is_not_valid(settings: Settings, backends) -> None:
    from dangan.errors import BackendUnavailable

    far = open_backends(settings, clock=Clock(datetime.now(UTC) + timedelta(days=365 * 10)))
    try:
        with pytest.raises(BackendUnavailable, match="QR-signing key"):
            _service(settings, far)
    finally:
        far.close()


def test_a_term_from_29_february_ends_on_28_february() -> None:
    from dangan.licences.types import add_years

    assert add_years(date(2028, 2, 29), 5) - timedelta(days=1) == date(2033, 2, 28)
    assert add_years(date(2026, 11, 28), 5) - timedelta(days=1) == date(2031, 11, 27)


def test_one_credit_code_names_one_issuer(backends, examples: list[str]) -> None:
    from dangan.errors import Forbidden
    from dangan.licences import types

    other = make_client(backends, "licences:issue", org="别的局").client
    definition = {**types.example_definitions()[0], "code": "XX01", "organisation": "别的局"}
    with backends.engine.connect() as conn:
        seal_id = conn.execute(select(types.licence_types.c.seal_id)).first()[0]
    with pytest.raises(Forbidden, match="already names"):
        backends.writer.run(lambda conn: types.register_type(
            conn, definition=definition, seal_id=seal_id, client=other, now=datetime.now(UTC)))

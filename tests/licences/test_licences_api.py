"""Issuing licences through the API, and checking them as a citizen, another department
and an outside tool would: pdfsig, the validation API, zbar on a 150 dpi print, the token
against the trust list alone."""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from dangan.bootstrap import Backends
from dangan.db.tables import ledger_entries, licences
from dangan.licences.identifiers import LicenceIdentifier
from dangan.licences.token import token_from_payload, verify_token
from dangan.licences.trust_list import TrustList
from tests.licences.conftest import (
    HOLDER_RESIDENT_ID,
    HOLDER_USCC,
    food_licence,
    person_licence,
    today,
)
from tests.signing.pades_tools import needs_pdfsig, pdfsig


def issue(api: TestClient, headers: dict[str, str], body: dict[str, Any], **extra: str) -> dict[str, Any]:
    response = api.post("/v1/licences", json=body, headers={**headers, **extra})
    assert response.status_code == 201, response.text
    return response.json()


def content(api: TestClient, headers: dict[str, str], licence: dict[str, Any]) -> bytes:
    response = api.get(f"/v1/documents/{licence['document']['id']}/content", headers=headers)
    assert response.status_code == 200
    return response.content


def public_status(api: TestClient, licence: dict[str, Any]) -> dict[str, Any]:
    token = token_from_payload(licence["verification_url"])
    response = api.get("/v1/public/licences/verify", params={"token": token})
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    return response.json()


def test_issue_returns_identifier_document_and_url(
    licence_api: TestClient, issuer: dict[str, str], backends: Backends
) -> None:
    licence = issue(licence_api, issuer, food_licence())
    identifier = LicenceIdentifier.parse(licence["identifier"])
    assert identifier.type_code == "SPJY"
    assert identifier.issuer_uscc == "11330100MB0000001R"
    assert identifier.version == 1
    assert licence["status"] == "active"
    assert licence["valid_from"] == today().isoformat()
    # The type's rule: five years, to the day before.
    assert licence["valid_until"] == (today().replace(year=today().year + 5) - timedelta(days=1)).isoformat()
    assert licence["holder"]["id_number_masked"] != HOLDER_USCC
    assert licence["verification_url"].startswith("http://")
    assert licence["ledger"]["seq"] >= 1
    pdf = content(licence_api, issuer, licence)
    assert hashlib.sha256(pdf).hexdigest() == licence["document"]["sha256"]
    with backends.engine.connect() as conn:
        kinds = [r.kind for r in conn.execute(select(ledger_entries.c.kind).order_by(ledger_entries.c.seq))]
    assert kinds[-2:] == ["document.ingested", "licence.issued"]


@needs_pdfsig
def test_issued_pdf_is_sealed_and_valid(licence_api: TestClient, issuer: dict[str, str], tmp_path: Path) -> None:
    licence = issue(licence_api, issuer, food_licence(level="B-LT"))
    pdf = content(licence_api, issuer, licence)
    path = tmp_path / "licence.pdf"
    path.write_bytes(pdf)
    [block] = pdfsig(path, None)
    assert "Signature is Valid" in block, block
    report = licence_api.get(
        f"/v1/documents/{licence['document']['id']}/validation", headers=issuer
    ).json()
    assert report["indication"] == "TOTAL_PASSED", report


def test_issued_b_t_pdf_is_totally_signed(licence_api: TestClient, issuer: dict[str, str], tmp_path: Path) -> None:
    if shutil.which("pdfsig") is None:
        pytest.skip("pdfsig (poppler-utils) is not installed")
    licence = issue(licence_api, issuer, food_licence())
    path = tmp_path / "licence.pdf"
    path.write_bytes(content(licence_api, issuer, licence))
    [block] = pdfsig(path, None)
    assert "Signature is Valid" in block and "Total document signed" in block, block


def test_printed_qr_verifies_with_the_trust_list_alone(
    licence_api: TestClient, issuer: dict[str, str], tmp_path: Path
) -> None:
    if shutil.which("pdftoppm") is None or shutil.which("zbarimg") is None:
        pytest.skip("pdftoppm (poppler-utils) and zbarimg (zbar-tools) are needed")
    licence = issue(licence_api, issuer, person_licence())
    pdf = content(licence_api, issuer, licence)
    (tmp_path / "l.pdf").write_bytes(pdf)
    subprocess.run(
        ["pdftoppm", "-r", "150", "-png", "-f", "1", "-l", "1", str(tmp_path / "l.pdf"), str(tmp_path / "page")],
        check=True,
    )
    png = next(tmp_path.glob("page*.png"))
    scanned = subprocess.run(
        ["zbarimg", "--raw", "-q", str(png)], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert scanned.lower() == licence["verification_url"].lower()
    trust = TrustList.from_json(licence_api.get("/.well-known/dangan/trust-list.json").json())
    claims, key = verify_token(token_from_payload(scanned), trust, now=trust.generated_at)
    assert claims.licence == licence["identifier"]
    assert claims.type_code == "SPJY"
    assert claims.holder == "张*明"
    assert key.status == "active"
    # The token's digest covers the licence's first revision, a prefix of the issued PDF.
    end = pdf.index(b"%%EOF") + len(b"%%EOF")
    end += len(re.match(rb"\r?\n?", pdf[end:]).group())  # with its end-of-line marker
    first_revision = pdf[:end]
    assert hashlib.sha256(first_revision).digest() == claims.pdf_sha256


def test_fields_are_checked_against_the_type_schema(licence_api: TestClient, issuer: dict[str, str]) -> None:
    body = food_licence()
    body["fields"]["main_business"] = "夜总会"
    del body["fields"]["address"]
    response = licence_api.post("/v1/licences", json=body, headers=issuer)
    assert response.status_code == 422
    problem = response.json()
    fields = {e["field"] for e in problem["errors"]}
    assert {"main_business", "(fields)"} <= fields, problem


@pytest.mark.parametrize(
    "holder, message",
    [
        ({"name": "张小明", "id_type": "resident_id", "id_number": "110105194912310021"}, "check"),
        ({"name": "某公司", "id_type": "uscc", "id_number": "91330100MA2B3C4D5X"}, "check"),
        ({"name": "某公司", "id_type": "passport", "id_number": "E12345678"}, "identified by"),
    ],
)
def test_holder_ids_are_checked(
    licence_api: TestClient, issuer: dict[str, str], holder: dict[str, str], message: str
) -> None:
    response = licence_api.post("/v1/licences", json=food_licence(holder=holder), headers=issuer)
    assert response.status_code == 422
    assert message in response.json()["detail"]


def test_validity_rules(licence_api: TestClient, issuer: dict[str, str]) -> None:
    too_long = (today().replace(year=today().year + 6)).isoformat()
    assert licence_api.post("/v1/licences", json=food_licence(valid_until=too_long), headers=issuer).status_code == 422
    assert licence_api.post("/v1/licences", json=food_licence(open_ended=True), headers=issuer).status_code == 422
    business = {
        "type": "YYZZ",
        "holder": {"name": "示范市张小明餐饮有限公司", "id_type": "uscc", "id_number": HOLDER_USCC},
        "fields": {
            "company_type": "有限责任公司",
            "legal_representative": "张小明",
            "registered_capital": "壹佰万元整",
            "established_on": "2020-05-01",
            "address": "示范市东城区和平街12号",
            "business_scope": "餐饮服务；食品销售",
        },
    }
    licence = issue(licence_api, issuer, business)
    assert licence["valid_until"] is None


def test_only_the_issuing_organisation_issues(licence_api: TestClient, department: dict[str, str], backends: Backends) -> None:
    from tests.conftest import make_client

    other = make_client(backends, "licences:issue", org="另一个局")
    response = licence_api.post(
        "/v1/licences", json=food_licence(), headers={"Authorization": f"Bearer {other.api_key}"}
    )
    assert response.status_code == 403
    assert licence_api.post("/v1/licences", json=food_licence(), headers=department).status_code == 403


def test_idempotent_issue(licence_api: TestClient, issuer: dict[str, str], backends: Backends) -> None:
    first = licence_api.post("/v1/licences", json=food_licence(), headers={**issuer, "Idempotency-Key": "lic-1"})
    again = licence_api.post("/v1/licences", json=food_licence(), headers={**issuer, "Idempotency-Key": "lic-1"})
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert first.json() == again.json()
    with backends.engine.connect() as conn:
        assert conn.execute(select(licences.c.id)).all() == [(first.json()["id"],)]
    other = licence_api.post(
        "/v1/licences", json=person_licence(), headers={**issuer, "Idempotency-Key": "lic-1"}
    )
    assert other.status_code == 409


def test_lifecycle_shows_on_the_public_api(licence_api: TestClient, issuer: dict[str, str], department: dict[str, str]) -> None:
    licence = issue(licence_api, issuer, food_licence())
    assert public_status(licence_api, licence)["status"] == "valid"
    base = f"/v1/licences/{licence['id']}"

    bad = licence_api.post(f"{base}/suspend", json={"reason_code": "because"}, headers=issuer)
    assert bad.status_code == 400
    assert licence_api.post(f"{base}/suspend", json={"reason_code": "under_investigation"}, headers=department).status_code == 403
    step = licence_api.post(f"{base}/suspend", json={"reason_code": "under_investigation", "reason": "投诉核查"}, headers=issuer)
    assert step.status_code == 200 and step.json()["status"] == "suspended"
    assert step.json()["ledger"]["seq"] > licence["ledger"]["seq"]
    assert public_status(licence_api, licence)["status"] == "suspended"

    assert licence_api.post(f"{base}/reinstate", json={"reason_code": "investigation_closed"}, headers=issuer).status_code == 200
    assert public_status(licence_api, licence)["status"] == "valid"

    assert licence_api.post(f"{base}/revoke", json={"reason_code": "obtained_by_fraud"}, headers=issuer).status_code == 200
    verified = public_status(licence_api, licence)
    assert verified["status"] == "revoked"
    assert verified["licence"]["holder"] == "示范****公司"  # length hidden too
    assert "张小明" not in str(verified)
    # A revoked licence stays revoked.
    for action, code in (("reinstate", "rectified"), ("suspend", "other")):
        refused = licence_api.post(f"{base}/{action}", json={"reason_code": code}, headers=issuer)
        assert refused.status_code == 409
        assert refused.json()["code"] == "licence_transition_refused"
    history = licence_api.get(base, headers=department).json()["history"]
    assert [h["status"] for h in history] == ["suspended", "active", "revoked"]
    assert history[0]["reason_code"] == "under_investigation"


def test_forged_and_altered_tokens_are_not_recognised(licence_api: TestClient, issuer: dict[str, str]) -> None:
    licence = issue(licence_api, issuer, food_licence())
    token = token_from_payload(licence["verification_url"])
    altered = token[:40] + ("A" if token[40] != "A" else "B") + token[41:]
    for candidate in (altered, "AAAA", "X" * 300, token[:-4], token.lower() + "A"):
        answer = licence_api.get("/v1/public/licences/verify", params={"token": candidate}).json()
        assert answer["status"] == "not_recognised"
        assert set(answer) == {"status", "checked_at"}
    # Any case decodes the same token (the QR carries it upper case).
    assert licence_api.get("/v1/public/licences/verify", params={"token": token.lower()}).json()["status"] == "valid"


def test_search_by_holder_uses_a_keyed_hash(
    licence_api: TestClient, issuer: dict[str, str], department: dict[str, str], backends: Backends
) -> None:
    mine = issue(licence_api, issuer, person_licence())
    issue(licence_api, issuer, food_licence())
    found = licence_api.post(
        "/v1/licences/search",
        json={"id_type": "resident_id", "id_number": HOLDER_RESIDENT_ID.lower()},
        headers=department,
    )
    assert found.status_code == 200
    items = found.json()["items"]
    assert [i["id"] for i in items] == [mine["id"]]
    assert HOLDER_RESIDENT_ID not in found.text
    none = licence_api.post(
        "/v1/licences/search", json={"id_type": "resident_id", "id_number": "110105194912310038"},
        headers=department,
    )
    assert none.json()["items"] == []
    # The plain number is nowhere in the database's licence rows or ledger.
    with backends.engine.connect() as conn:
        for table in ("licences", "ledger_entries"):
            rows = conn.execute(text(f"SELECT * FROM {table}")).all()
            assert HOLDER_RESIDENT_ID not in repr(rows)
    assert licence_api.post(
        "/v1/licences/search", json={"id_type": "resident_id", "id_number": HOLDER_RESIDENT_ID},
        headers=issuer | {"Authorization": "Bearer nope"},
    ).status_code == 401


def test_public_routes_are_rate_limited(settings, backends: Backends, examples: list[str]) -> None:
    from dangan.api import create_app

    limited = settings.model_copy(update={"public_rate_limit": 5})
    with TestClient(create_app(limited, backends=backends)) as api:
        answers = [api.get("/v1/public/licences/verify", params={"token": "AAAA"}) for _ in range(7)]
    assert [a.status_code for a in answers[:5]] == [200] * 5
    assert answers[5].status_code == 429
    assert int(answers[5].headers["Retry-After"]) >= 1
    assert answers[5].json()["code"] == "too_many_requests"


def test_trust_list_lists_the_qr_key(licence_api: TestClient) -> None:
    document = licence_api.get("/.well-known/dangan/trust-list.json").json()
    trust = TrustList.from_json(document)
    assert [k.status for k in trust.keys].count("active") == 1
    assert all(len(k.kid) == 8 for k in trust.keys)


def test_fast_path_and_route_answer_alike(licence_api: TestClient, issuer: dict[str, str]) -> None:
    licence = issue(licence_api, issuer, food_licence())
    token = token_from_payload(licence["verification_url"])
    fast = licence_api.get("/v1/public/licences/verify", params={"token": token})
    # An extra parameter is not the fast path's single token: the route answers.
    routed = licence_api.get("/v1/public/licences/verify", params={"token": token, "x": "1"})
    assert fast.status_code == routed.status_code == 200
    drop = lambda body: {k: v for k, v in body.items() if k != "checked_at"}
    assert drop(fast.json()) == drop(routed.json())
    assert fast.headers["content-type"] == routed.headers["content-type"] == "application/json"
    assert fast.headers["cache-control"] == routed.headers["cache-control"] == "no-store"
    missing = licence_api.get("/v1/public/licences/verify")
    assert missing.status_code == 422
    assert missing.headers["content-type"] == "application/problem+json"


def test_public_status_is_live_on_every_database(
    database_url: str, tmp_path: Path, shared_pki: tuple[Path, Path]
) -> None:
    """Public verification reads on its own autocommit connection: a status change
    committed by the writer shows on the next scan, on SQLite and PostgreSQL."""
    from dangan.api import create_app
    from dangan.bootstrap import initialise, open_backends
    from dangan.config import Settings
    from dangan.licences.examples import load_example_types
    from tests.conftest import make_client
    from tests.licences.conftest import ISSUER

    pki_dir, passphrase_file = shared_pki
    settings = Settings(data_dir=tmp_path / "data", database_url=database_url,
                        pki_dir=pki_dir, pki_passphrase_file=passphrase_file)
    initialise(settings)
    backends = open_backends(settings)
    try:
        load_example_types(settings, backends)
        key = make_client(backends, "licences:issue", org=ISSUER).api_key
        headers = {"Authorization": f"Bearer {key}"}
        with TestClient(create_app(settings, backends=backends)) as api:
            licence = issue(api, headers, food_licence())
            base = f"/v1/licences/{licence['id']}"
            seen = [public_status(api, licence)["status"]]
            for action, code in (("suspend", "other"), ("reinstate", "rectified"), ("revoke", "other")):
                assert api.post(f"{base}/{action}", json={"reason_code": code}, headers=headers).status_code == 200
                seen.append(public_status(api, licence)["status"])
        assert seen == ["valid", "suspended", "valid", "revoked"]
    finally:
        backends.close()

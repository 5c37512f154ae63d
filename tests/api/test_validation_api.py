"""PDF signature validation through the API: ``POST /v1/validate`` and
``GET /v1/documents/{id}/validation``, on real backends and the run's development PKI.

PDFs are signed with the PAdES test helpers (``tests/signing``, through
``tests.support.signed_pdfs``) by credentials of the PKI the deployment trusts.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from dangan.api import create_app
from dangan.api.schemas import StoredValidationOut, ValidationReportOut
from dangan.bootstrap import Backends
from dangan.config import Settings
from dangan.db.tables import document_versions, documents, idempotency_keys, objects
from dangan.ledger.log import read_head
from tests.api.conftest import pdf_bytes
from tests.conftest import make_client
from tests.signing.pades_tools import one_page_pdf

pytest_plugins = ["tests.support.signed_pdfs"]

META = json.dumps({"title": "签署的批复", "kind": "approval", "organisation": "test-org"})


def post_pdf(api: TestClient, auth: dict[str, str], pdf: bytes):  # noqa: ANN201 - a Response
    files = {"file": ("doc.pdf", pdf, "application/pdf")}
    return api.post("/v1/validate", headers=auth, files=files)


def footprint(backends: Backends) -> tuple[int, ...]:
    """Objects, rows of every content table, and the ledger size."""
    with backends.engine.connect() as conn:
        rows = [
            conn.execute(select(func.count()).select_from(table)).scalar()
            for table in (documents, document_versions, objects, idempotency_keys)
        ]
        size = read_head(conn).size
    return (len(list(backends.store.iter_keys())), *rows, size)


def upload(api: TestClient, auth: dict[str, str], content: bytes) -> str:
    response = api.post(
        "/v1/documents", headers=auth, files={"file": ("f", content)}, data={"metadata": META}
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


def assert_problem(response, status: int, code: str) -> None:  # noqa: ANN001 - a Response
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == code


# --- POST /v1/validate -------------------------------------------------------------------------


def test_a_signed_pdf_passes(api: TestClient, auth: dict[str, str], signed_pdf: bytes) -> None:
    response = post_pdf(api, auth, signed_pdf)
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["indication"], report["sub_indication"]) == ("TOTAL_PASSED", None)
    assert report["problem"] is None
    assert report["document_sha256"] == hashlib.sha256(signed_pdf).hexdigest()
    [signature] = report["signatures"]
    assert signature["kind"] == "approval" and signature["pades_level"] == "B-T"
    assert signature["trusted"] and "DEVELOPMENT" in signature["trust_anchor"]
    assert signature["timestamp"]["trusted"] and signature["coverage"] == "entire file"
    assert signature["changes"] == []
    # The documented schema is exactly what is sent (extra="forbid" catches new keys).
    ValidationReportOut.model_validate(report)


def test_a_raw_pdf_body_gets_the_same_report(
    api: TestClient, auth: dict[str, str], signed_pdf: bytes
) -> None:
    multipart = post_pdf(api, auth, signed_pdf).json()
    raw = api.post(
        "/v1/validate", headers={**auth, "Content-Type": "application/pdf"}, content=signed_pdf
    )
    assert raw.status_code == 200, raw.text
    body = raw.json()
    assert body.pop("validation_time") and multipart.pop("validation_time")
    assert body == multipart


def test_a_byte_changed_in_the_signed_range_fails(
    api: TestClient, auth: dict[str, str], tampered_pdf: bytes
) -> None:
    report = post_pdf(api, auth, tampered_pdf).json()
    assert report["indication"] == "TOTAL_FAILED"
    assert report["signatures"][0]["sub_indication"] == "HASH_FAILURE"


@pytest.mark.parametrize(
    "content",
    [os.urandom(4096), pdf_bytes("not really a pdf", 2048), b"", "纯文本，不是 PDF".encode()],
    ids=["random", "pdf-header-only", "empty", "text"],
)
def test_unreadable_input_is_a_200_format_failure(
    api: TestClient, auth: dict[str, str], content: bytes
) -> None:
    response = post_pdf(api, auth, content)
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["indication"], report["sub_indication"]) == ("TOTAL_FAILED", "FORMAT_FAILURE")
    assert report["problem"] == "unreadable" and report["signatures"] == []


def test_an_unsigned_pdf_has_no_signature(api: TestClient, auth: dict[str, str]) -> None:
    report = post_pdf(api, auth, one_page_pdf()).json()
    assert (report["indication"], report["sub_indication"]) == ("TOTAL_FAILED", "FORMAT_FAILURE")
    assert report["problem"] == "no_signature"


def test_validation_stores_nothing(
    api: TestClient,
    auth: dict[str, str],
    backends: Backends,
    signed_pdf: bytes,
    tampered_pdf: bytes,
) -> None:
    before = footprint(backends)
    for content in (signed_pdf, tampered_pdf, os.urandom(1000), one_page_pdf()):
        assert post_pdf(api, auth, content).status_code == 200
    assert footprint(backends) == before


@pytest.mark.parametrize(("who", "status"), [(None, 401), ("writer", 403)])
def test_validation_needs_documents_read(
    api: TestClient, backends: Backends, signed_pdf: bytes, who: str | None, status: int
) -> None:
    headers = {}
    if who == "writer":
        headers = {"Authorization": f"Bearer {make_client(backends, 'documents:write').api_key}"}
    response = post_pdf(api, headers, signed_pdf)
    assert_problem(response, status, "unauthenticated" if status == 401 else "forbidden")


def test_other_body_types_are_415(api: TestClient, auth: dict[str, str]) -> None:
    response = api.post("/v1/validate", headers=auth, json={"pdf": "base64…"})
    assert_problem(response, 415, "unsupported_media_type")


@pytest.fixture
def small(settings: Settings, backends: Backends) -> Iterator[TestClient]:
    """The API with DANGAN_MAX_VALIDATE_BYTES at 4 KiB."""
    settings = settings.model_copy(update={"max_validate_bytes": 4096})
    with TestClient(create_app(settings, backends=backends)) as client:
        yield client


def test_too_large_is_413_and_stores_nothing(
    small: TestClient, auth: dict[str, str], backends: Backends
) -> None:
    before = footprint(backends)
    by_length = post_pdf(small, auth, pdf_bytes("big", 400_000))
    assert_problem(by_length, 413, "payload_too_large")

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit cuts the stream
        yield from (pdf_bytes("streamed", 5000)[i : i + 1000] for i in range(0, 5000, 1000))

    streamed = small.post(
        "/v1/validate", headers={**auth, "Content-Type": "application/pdf"}, content=chunks()
    )
    assert_problem(streamed, 413, "payload_too_large")
    assert post_pdf(small, auth, pdf_bytes("fits", 4096)).status_code == 200
    assert footprint(backends) == before


def test_openapi_documents_the_report(api: TestClient) -> None:
    paths = api.get("/openapi.json").json()["paths"]
    validate = paths["/v1/validate"]["post"]
    assert validate["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ValidationReportOut"
    }
    assert set(validate["requestBody"]["content"]) == {"multipart/form-data", "application/pdf"}
    stored = paths["/v1/documents/{doc_id}/validation"]["get"]
    assert "StoredValidationOut" in json.dumps(stored["responses"]["200"])


# --- GET /v1/documents/{id}/validation -----------------------------------------------------------


def test_a_stored_version_is_validated(
    api: TestClient, auth: dict[str, str], backends: Backends, signed_pdf: bytes
) -> None:
    doc_id = upload(api, auth, signed_pdf)
    before = footprint(backends)
    response = api.get(f"/v1/documents/{doc_id}/validation", headers=auth)
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["document"], report["version"]) == (doc_id, 1)
    assert report["indication"] == "TOTAL_PASSED"
    assert report["document_sha256"] == hashlib.sha256(signed_pdf).hexdigest()
    StoredValidationOut.model_validate(report)
    explicit = api.get(f"/v1/documents/{doc_id}/validation?version=1", headers=auth).json()
    assert explicit.pop("validation_time") and report.pop("validation_time")
    assert explicit == report
    assert footprint(backends) == before


def test_a_stored_unsigned_pdf_has_no_signature(api: TestClient, auth: dict[str, str]) -> None:
    doc_id = upload(api, auth, one_page_pdf())
    report = api.get(f"/v1/documents/{doc_id}/validation", headers=auth).json()
    assert (report["indication"], report["problem"]) == ("TOTAL_FAILED", "no_signature")


def test_unknown_documents_and_versions_are_404(
    api: TestClient, auth: dict[str, str], signed_pdf: bytes
) -> None:
    doc_id = upload(api, auth, signed_pdf)
    missing_version = api.get(f"/v1/documents/{doc_id}/validation?version=2", headers=auth)
    assert_problem(missing_version, 404, "not_found")
    unknown = api.get("/v1/documents/01900000-0000-7000-8000-000000000000/validation", headers=auth)
    assert_problem(unknown, 404, "not_found")


def test_a_stored_version_that_is_not_a_pdf_is_415(api: TestClient, auth: dict[str, str]) -> None:
    doc_id = upload(api, auth, json.dumps({"不是": "PDF"}).encode())
    response = api.get(f"/v1/documents/{doc_id}/validation", headers=auth)
    assert_problem(response, 415, "unsupported_media_type")


def test_a_stored_version_over_the_limit_is_not_read(
    small: TestClient, auth: dict[str, str], signed_pdf: bytes
) -> None:
    assert len(signed_pdf) > 4096
    doc_id = upload(small, auth, signed_pdf)
    report = small.get(f"/v1/documents/{doc_id}/validation", headers=auth).json()
    assert (report["indication"], report["problem"]) == ("TOTAL_FAILED", "too_large")
    assert report["document_sha256"] == hashlib.sha256(signed_pdf).hexdigest()


def test_stored_validation_needs_documents_read(
    api: TestClient, auth: dict[str, str], backends: Backends, signed_pdf: bytes
) -> None:
    doc_id = upload(api, auth, signed_pdf)
    response = api.get(f"/v1/documents/{doc_id}/validation")
    assert_problem(response, 401, "unauthenticated")
    writer = {"Authorization": f"Bearer {make_client(backends, 'documents:write').api_key}"}
    assert_problem(api.get(f"/v1/documents/{doc_id}/validation", headers=writer), 403, "forbidden")


def test_the_readme_example_has_the_report_shape(
    api: TestClient, auth: dict[str, str], signed_pdf: bytes
) -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Signature validation reports", 1)[1]
    example = json.loads(section.split("```json", 1)[1].split("```", 1)[0])
    report = post_pdf(api, auth, signed_pdf).json()
    assert example.keys() == report.keys()
    [documented], [signature] = example["signatures"], report["signatures"]
    assert documented.keys() == signature.keys()
    assert documented["timestamp"].keys() == signature["timestamp"].keys()
    ValidationReportOut.model_validate(example)

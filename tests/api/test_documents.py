"""The documents API, end to end on the embedded backends."""

from __future__ import annotations

import hashlib
import json

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import pdf_bytes

META = {"title": "营业执照申请", "kind": "application", "organisation": "test-org", "case_ref": "C-1"}


def upload(api: TestClient, auth: dict, content: bytes, meta: dict | None = None, **headers: str):
    return api.post(
        "/v1/documents",
        headers={**auth, **headers},
        files={"file": ("a.pdf", content, "application/pdf")},
        data={"metadata": json.dumps(meta or META)},
    )


def test_upload_returns_a_receipt(api: TestClient, auth: dict) -> None:
    content = pdf_bytes("receipt")
    response = upload(api, auth, content)
    assert response.status_code == 201, response.text
    receipt = response.json()
    assert receipt["sha256"] == hashlib.sha256(content).hexdigest()
    assert receipt["size"] == len(content)
    assert receipt["media_type"] == "application/pdf"
    assert receipt["version"] == 1
    assert isinstance(receipt["ledger"]["seq"], int) and len(receipt["ledger"]["leaf_hash"]) == 64
    assert response.headers["location"] == f"/v1/documents/{receipt['id']}"
    assert response.headers["x-request-id"]


def test_ids_are_random_not_sequential(api: TestClient, auth: dict) -> None:
    ids = [upload(api, auth, pdf_bytes(str(i))).json()["id"] for i in range(3)]
    assert len(set(ids)) == 3
    assert all(len(i) == 36 and i[14] == "7" for i in ids)  # UUIDv7


def test_download_is_bit_exact_with_etag(api: TestClient, auth: dict) -> None:
    content = pdf_bytes("dl", 3 * 1024 * 1024 + 17)
    receipt = upload(api, auth, content).json()
    response = api.get(f"/v1/documents/{receipt['id']}/content", headers=auth)
    assert response.status_code == 200
    assert response.content == content
    assert response.headers["etag"] == f'"{receipt["sha256"]}"'
    assert response.headers["content-type"] == "application/pdf"
    cached = api.get(
        f"/v1/documents/{receipt['id']}/content",
        headers={**auth, "If-None-Match": response.headers["etag"]},
    )
    assert cached.status_code == 304 and cached.content == b""


@pytest.mark.parametrize(
    ("header", "span"),
    [("bytes=0-9", (0, 10)), ("bytes=100-", (100, None)), ("bytes=-20", (-20, None)),
     ("bytes=5-5", (5, 6)), ("bytes=990-5000", (990, None))],
)
def test_range_requests(api: TestClient, auth: dict, header: str, span: tuple) -> None:
    content = pdf_bytes("range", 1000)
    doc = upload(api, auth, content).json()["id"]
    response = api.get(f"/v1/documents/{doc}/content", headers={**auth, "Range": header})
    assert response.status_code == 206
    assert response.content == content[span[0] : span[1]]
    start = span[0] % len(content)
    assert response.headers["content-range"] == f"bytes {start}-{start + len(response.content) - 1}/1000"


def test_unsatisfiable_range_is_416(api: TestClient, auth: dict) -> None:
    doc = upload(api, auth, pdf_bytes("r416", 100)).json()["id"]
    response = api.get(f"/v1/documents/{doc}/content", headers={**auth, "Range": "bytes=100-"})
    assert response.status_code == 416
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "range_not_satisfiable"


def test_head_gives_headers_without_body(api: TestClient, auth: dict) -> None:
    content = pdf_bytes("head", 4000)
    doc = upload(api, auth, content).json()["id"]
    response = api.head(f"/v1/documents/{doc}/content", headers=auth)
    assert response.status_code == 200
    assert response.headers["content-length"] == "4000"
    assert response.content == b""


def test_metadata_and_versions(api: TestClient, auth: dict) -> None:
    receipt = upload(api, auth, pdf_bytes("meta")).json()
    response = api.get(f"/v1/documents/{receipt['id']}", headers=auth)
    assert response.status_code == 200
    doc = response.json()
    assert doc["title"] == META["title"] and doc["case_ref"] == "C-1"
    assert doc["current_version"] == 1
    assert doc["versions"][0]["sha256"] == receipt["sha256"]
    assert doc["versions"][0]["ledger_seq"] == receipt["ledger"]["seq"]
    missing = api.get("/v1/documents/00000000-0000-7000-8000-000000000000", headers=auth)
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"
    bad_version = api.get(f"/v1/documents/{receipt['id']}/content?version=2", headers=auth)
    assert bad_version.status_code == 404


def test_list_filters_and_cursor_pagination(api: TestClient, auth: dict) -> None:
    ids = [upload(api, auth, pdf_bytes(f"l{i}"), {**META, "kind": "k" if i % 2 else "other"}).json()["id"]
           for i in range(7)]
    seen, cursor = [], None
    while True:
        params = {"limit": 3, "kind": "other"} | ({"cursor": cursor} if cursor else {})
        page = api.get("/v1/documents", headers=auth, params=params).json()
        seen += [d["id"] for d in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [i for n, i in enumerate(ids) if n % 2 == 0][::-1]
    bad = api.get("/v1/documents", headers=auth, params={"cursor": "!!"})
    assert bad.status_code == 400


def test_idempotency_key(api: TestClient, auth: dict) -> None:
    content = pdf_bytes("idem")
    first = upload(api, auth, content, **{"Idempotency-Key": "abc"})
    second = upload(api, auth, content, **{"Idempotency-Key": "abc"})
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second.headers["idempotent-replayed"] == "true"
    other = upload(api, auth, pdf_bytes("idem-2"), **{"Idempotency-Key": "abc"})
    assert other.status_code == 409
    assert other.json()["code"] == "idempotency_conflict"


def test_scopes_and_auth(api: TestClient, backends) -> None:
    from tests.conftest import make_client

    reader = {"Authorization": f"Bearer {make_client(backends, 'documents:read').api_key}"}
    response = upload(api, reader, pdf_bytes("scope"))
    assert response.status_code == 403 and response.json()["code"] == "forbidden"
    for headers in ({}, {"Authorization": "Bearer dgn_wrong"}, {"Authorization": "Basic x"}):
        response = api.get("/v1/documents", headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.headers["content-type"] == "application/problem+json"


def test_ops_endpoints(api: TestClient, auth: dict) -> None:
    assert api.get("/healthz").json() == {"status": "ok"}
    ready = api.get("/readyz").json()
    assert ready["checks"] == {"database": "ok", "storage": "ok"}
    upload(api, auth, pdf_bytes("metrics"))
    metrics = api.get("/metrics").text
    assert 'dangan_http_requests_total{method="POST",route="/v1/documents",status="201"} 1.0' in metrics
    assert "dangan_ingested_documents_total 1.0" in metrics
    assert api.get("/docs").status_code == 200
    assert "/v1/documents" in api.get("/openapi.json").json()["paths"]


def test_unknown_route_is_problem_json(api: TestClient) -> None:
    response = api.get("/nope")
    assert response.status_code == 404
    assert response.json()["type"].startswith("urn:dangan:problem:")


def test_conflicting_idempotency_key_stores_nothing(api: TestClient, auth: dict, backends) -> None:
    upload(api, auth, pdf_bytes("first"), **{"Idempotency-Key": "k-9"})
    before = set(backends.store.iter_keys())
    other = upload(api, auth, pdf_bytes("second, different"), **{"Idempotency-Key": "k-9"})
    assert other.status_code == 409
    assert set(backends.store.iter_keys()) == before

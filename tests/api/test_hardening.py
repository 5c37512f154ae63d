"""Hostile or odd requests get problem details, never a bare 500; damage is named."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from dangan.bootstrap import Backends
from tests.api.conftest import pdf_bytes
from tests.conftest import make_client

META = {"title": "t", "kind": "application", "organisation": "test-org"}


def upload(api: TestClient, auth: dict, content: bytes, meta: dict | None = None):
    return api.post("/v1/documents", headers=auth,
                    files={"file": ("a.pdf", content, "application/pdf")},
                    data={"metadata": json.dumps(meta or META)})


def is_problem(response, status: int) -> bool:
    return (response.status_code == status
            and response.headers["content-type"] == "application/problem+json"
            and response.json()["request_id"] == response.headers["x-request-id"])


def test_huge_numbers_are_validation_errors(api: TestClient, backends: Backends) -> None:
    reader = {"Authorization": f"Bearer {make_client(backends, 'ledger:read').api_key}"}
    assert is_problem(api.get("/v1/ledger/entries/99999999999999999999999", headers=reader), 422)
    assert is_problem(api.get("/v1/ledger/proofs/inclusion", headers=reader,
                              params={"tree_size": 10**30, "seq": 0}), 422)
    assert is_problem(api.get("/v1/ledger/proofs/consistency", headers=reader,
                              params={"first": 1, "second": 10**30}), 422)


def test_absurd_range_is_ignored_and_416_names_the_length(api: TestClient, auth: dict) -> None:
    content = pdf_bytes("range", 500)
    doc = upload(api, auth, content).json()["id"]
    whole = api.get(f"/v1/documents/{doc}/content", headers={**auth, "Range": "bytes=" + "9" * 4400 + "-"})
    assert whole.status_code == 200 and whole.content == content
    beyond = api.get(f"/v1/documents/{doc}/content", headers={**auth, "Range": "bytes=600-"})
    assert is_problem(beyond, 416)
    assert beyond.headers["content-range"] == "bytes */500"


def test_overlong_boundary_is_400(api: TestClient, auth: dict) -> None:
    boundary = "b" * 300
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"metadata\"\r\n\r\n{{}}\r\n"
            f"--{boundary}--\r\n").encode()
    response = api.post("/v1/documents", content=body,
                        headers={**auth, "Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert is_problem(response, 400)


def test_control_characters_are_refused(api: TestClient, auth: dict) -> None:
    response = upload(api, auth, pdf_bytes("nul"), {**META, "title": "a\u0000b"})
    assert is_problem(response, 422) and response.json()["code"] == "invalid_metadata"
    assert is_problem(api.get("/v1/documents", headers=auth, params={"organisation": "a\x00b"}), 422)


def test_unexpected_errors_carry_the_request_id(api: TestClient, auth: dict, monkeypatch) -> None:
    import dangan.api.documents as routes

    def boom(*_args, **_kwargs):
        raise RuntimeError("internal detail that must not leak")

    monkeypatch.setattr(routes, "list_documents", boom)
    response = api.get("/v1/documents", headers={**auth, "X-Request-ID": "trace-123"})
    assert is_problem(response, 500)
    assert response.json()["request_id"] == "trace-123"
    assert "internal detail" not in response.text


def test_missing_content_is_an_integrity_error(api: TestClient, auth: dict, backends: Backends) -> None:
    receipt = upload(api, auth, pdf_bytes("gone")).json()
    backends.store.delete(receipt["sha256"], now=backends.clock())
    response = api.get(f"/v1/documents/{receipt['id']}/content", headers=auth)
    assert is_problem(response, 500)
    assert response.json()["code"] == "integrity_error"

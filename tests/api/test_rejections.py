"""Rejected uploads get a problem+json answer and leave no object, row or event behind."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from dangan.api import create_app
from dangan.bootstrap import Backends, initialise, open_backends
from dangan.config import Settings
from dangan.db.tables import document_versions, documents, idempotency_keys, objects
from dangan.ledger.log import read_head
from tests.api.conftest import pdf_bytes
from tests.conftest import make_client

LIMIT = 4096
META = json.dumps({"title": "t", "kind": "application", "organisation": "test-org"})


@pytest.fixture
def small(settings: Settings) -> Iterator[tuple[TestClient, Backends, dict]]:
    settings = settings.model_copy(update={"max_upload_bytes": LIMIT})
    initialise(settings)
    backends = open_backends(settings)
    auth = {"Authorization": f"Bearer {make_client(backends).api_key}"}
    with TestClient(create_app(settings, backends=backends)) as client:
        yield client, backends, auth


def assert_nothing_left(backends: Backends, data_dir: Path) -> None:
    assert list(backends.store.iter_keys()) == []
    with backends.engine.connect() as conn:
        for table in (documents, document_versions, objects, idempotency_keys):
            assert conn.execute(select(func.count()).select_from(table)).scalar() == 0
        assert read_head(conn).size == 1  # only the client.created entry
    leftovers = [
        p for p in data_dir.rglob("*") if p.is_file() and "tmp" in p.relative_to(data_dir).parts
    ]
    assert leftovers == []


def multipart(file: bytes | None, metadata: str | None, boundary: str = "XyZ") -> bytes:
    parts = []
    if metadata is not None:
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="metadata"\r\n\r\n{metadata}\r\n'.encode()
        )
    if file is not None:
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="f"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n".encode() + file + b"\r\n"
        )
    return b"".join(parts) + f"--{boundary}--\r\n".encode()


CASES = {
    "too large while streaming": (413, "payload_too_large", multipart(pdf_bytes("big", LIMIT + 1), META)),
    "too large by length": (413, "payload_too_large", multipart(pdf_bytes("huge", LIMIT + 300_000), META)),
    "wrong type": (415, "unsupported_media_type", multipart(b"just some text", META)),
    "html is not xml": (415, "unsupported_media_type", multipart(b"<!doctype html><p>x", META)),
    "metadata not json": (422, "invalid_metadata", multipart(pdf_bytes("m1"), "{not json")),
    "metadata missing title": (
        422, "invalid_metadata", multipart(pdf_bytes("m2"), json.dumps({"kind": "a", "organisation": "test-org"}))
    ),
    "metadata unknown field": (
        422, "invalid_metadata",
        multipart(pdf_bytes("m3"), json.dumps({"title": "t", "kind": "a", "organisation": "test-org", "x": 1})),
    ),
    "another organisation": (
        403, "forbidden",
        multipart(pdf_bytes("org"), json.dumps({"title": "t", "kind": "a", "organisation": "elsewhere"})),
    ),
    "no file": (400, "invalid_request", multipart(None, META)),
    "no metadata": (400, "invalid_request", multipart(pdf_bytes("nm"), None)),
    "truncated body": (400, "invalid_request", multipart(pdf_bytes("tr"), META)[:-30]),
    "unexpected field": (
        400, "invalid_request",
        multipart(pdf_bytes("uf"), META) .replace(b'name="metadata"', b'name="other"'),
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_rejected_upload_leaves_nothing(small, case: str) -> None:
    client, backends, auth = small
    status, code, body = CASES[case]
    response = client.post(
        "/v1/documents",
        headers={**auth, "Content-Type": "multipart/form-data; boundary=XyZ"},
        content=body,
    )
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == code
    assert_nothing_left(backends, Path(str(backends.engine.url.database)).parent)


@pytest.mark.parametrize(
    ("headers", "status"),
    [({}, 401), ({"Authorization": "Bearer dgn_forged"}, 401), ("reader", 403)],
)
def test_rejected_auth_leaves_nothing(small, headers, status: int) -> None:
    client, backends, _ = small
    if headers == "reader":
        headers = {"Authorization": f"Bearer {make_client(backends, 'documents:read').api_key}"}
    response = client.post(
        "/v1/documents",
        headers={**headers, "Content-Type": "multipart/form-data; boundary=XyZ"},
        content=multipart(pdf_bytes("auth"), META),
    )
    assert response.status_code == status
    with backends.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(documents)).scalar() == 0
    assert list(backends.store.iter_keys()) == []


def test_not_multipart_is_400(small) -> None:
    client, backends, auth = small
    response = client.post("/v1/documents", headers=auth, json={"title": "x"})
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_request"

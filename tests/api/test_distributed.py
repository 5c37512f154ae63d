"""The same API on the distributed backends: PostgreSQL + S3 (SeaweedFS, Object Lock)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from dangan.api import create_app
from dangan.bootstrap import initialise, open_backends
from dangan.config import Settings
from tests.api.conftest import pdf_bytes
from tests.conftest import _reset_postgres, make_client
from tests.support import independent_verifier

pytestmark = [pytest.mark.postgres, pytest.mark.s3]


@pytest.fixture
def distributed(s3_settings: Settings, postgres_server_url: str, tmp_path: Path) -> Iterator[tuple]:
    _reset_postgres(postgres_server_url)
    settings = s3_settings.model_copy(
        update={"data_dir": tmp_path / "data", "database_url": postgres_server_url}
    )
    initialise(settings)
    backends = open_backends(settings)
    auth = {"Authorization": f"Bearer {make_client(backends).api_key}"}
    with TestClient(create_app(settings, backends=backends)) as client:
        yield client, auth, backends


def test_upload_download_and_receipt_on_postgres_and_s3(distributed) -> None:
    client, auth, backends = distributed
    content = pdf_bytes("distributed", 2 * 1024 * 1024 + 5)
    meta = json.dumps({"title": "t", "kind": "application", "organisation": "test-org"})
    response = client.post("/v1/documents", headers={**auth, "Idempotency-Key": "d1"},
                           files={"file": ("a.pdf", content, "application/pdf")},
                           data={"metadata": meta})
    assert response.status_code == 201, response.text
    receipt = response.json()
    assert receipt["sha256"] == hashlib.sha256(content).hexdigest()
    back = client.get(f"/v1/documents/{receipt['id']}/content", headers=auth)
    assert back.content == content
    part = client.get(f"/v1/documents/{receipt['id']}/content", headers={**auth, "Range": "bytes=10-19"})
    assert part.status_code == 206 and part.content == content[10:20]
    key = client.get("/v1/ledger/key").text
    assert independent_verifier.verify(receipt, key)
    assert backends.store.stat(receipt["sha256"]).size == len(content)
    assert client.get("/readyz").json()["checks"] == {"database": "ok", "storage": "ok"}

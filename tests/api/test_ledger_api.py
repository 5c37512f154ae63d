"""Receipts carry proofs that an independent verifier accepts; the ledger endpoints."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from dangan.bootstrap import Backends
from dangan.ledger import merkle
from tests.api.conftest import pdf_bytes
from tests.conftest import make_client
from tests.support import independent_verifier

META = json.dumps({"title": "t", "kind": "application", "organisation": "test-org"})


def upload(api: TestClient, auth: dict, content: bytes, **headers: str) -> dict:
    response = api.post(
        "/v1/documents",
        headers={**auth, **headers},
        files={"file": ("a.pdf", content, "application/pdf")},
        data={"metadata": META},
    )
    assert response.status_code == 201, response.text
    return response.json()


def test_receipts_verify_independently_with_only_the_public_key(api: TestClient, auth: dict) -> None:
    key = api.get("/v1/ledger/key").text
    receipts = [upload(api, auth, pdf_bytes(f"r{i}")) for i in range(9)]
    for receipt in receipts:
        assert receipt["ledger"]["tree_size"] > receipt["ledger"]["seq"]
        assert independent_verifier.verify(receipt, key)
        forged = json.loads(json.dumps(receipt))
        forged["sha256"] = "0" * 64
        assert not independent_verifier.verify(forged, key)
        bent = json.loads(json.dumps(receipt))
        bent["ledger"]["seq"] += 1
        assert not independent_verifier.verify(bent, key)


def test_checkpoint_key_entries_and_proofs(api: TestClient, auth: dict, backends: Backends) -> None:
    receipts = [upload(api, auth, pdf_bytes(f"p{i}")) for i in range(5)]
    reader = {"Authorization": f"Bearer {make_client(backends, 'ledger:read').api_key}"}
    checkpoint = api.get("/v1/ledger/checkpoint")
    assert checkpoint.status_code == 200
    assert checkpoint.headers["content-type"].startswith("text/plain")
    origin, size, root_b64 = checkpoint.text.split("\n")[:3]
    assert origin == "dangan.localhost/ledger"
    size = int(size)
    assert size >= 7  # client.created, 5 ingests, another client.created
    key = api.get("/v1/ledger/key").text.strip()
    assert key.startswith("dangan.localhost/ledger+") and len(key.split("+", 2)) == 3

    last = receipts[-1]["ledger"]
    entry = api.get(f"/v1/ledger/entries/{last['seq']}", headers=reader)
    assert entry.status_code == 200 and entry.headers["content-type"] == "application/json"
    assert entry.content == last["entry"].encode()
    assert merkle.leaf_hash(entry.content).hex() == last["leaf_hash"]

    by_seq = api.get("/v1/ledger/proofs/inclusion", headers=reader,
                     params={"seq": last["seq"], "tree_size": last["tree_size"]}).json()
    by_hash = api.get("/v1/ledger/proofs/inclusion", headers=reader,
                      params={"leaf_hash": last["leaf_hash"], "tree_size": last["tree_size"]}).json()
    assert by_seq == by_hash and by_seq["inclusion_proof"] == last["inclusion_proof"]

    import base64

    first = receipts[0]["ledger"]
    old_root = base64.b64decode(first["checkpoint"].split("\n")[2])
    proof = api.get("/v1/ledger/proofs/consistency", headers=reader,
                    params={"first": first["tree_size"], "second": size}).json()
    assert merkle.verify_consistency(
        first["tree_size"], size, old_root, base64.b64decode(root_b64),
        [bytes.fromhex(h) for h in proof["consistency_proof"]],
    )


def test_ledger_reads_need_the_scope(api: TestClient, auth: dict) -> None:
    upload(api, auth, pdf_bytes("scope"))
    assert api.get("/v1/ledger/entries/0").status_code == 401
    assert api.get("/v1/ledger/entries/0", headers=auth).status_code == 403
    assert api.get("/v1/ledger/checkpoint").status_code == 200  # public


def test_bad_proof_requests(api: TestClient, backends: Backends) -> None:
    reader = {"Authorization": f"Bearer {make_client(backends, 'ledger:read').api_key}"}
    assert api.get("/v1/ledger/entries/999", headers=reader).status_code == 404
    for params in ({"tree_size": 1}, {"tree_size": 1, "seq": 0, "leaf_hash": "0" * 64},
                   {"tree_size": 99, "seq": 0}, {"tree_size": 1, "leaf_hash": "ab" * 32}):
        response = api.get("/v1/ledger/proofs/inclusion", headers=reader, params=params)
        assert response.status_code in (400, 404), params
        assert response.headers["content-type"] == "application/problem+json"
    bad = api.get("/v1/ledger/proofs/consistency", headers=reader, params={"first": 3, "second": 1})
    assert bad.status_code == 400


def test_idempotent_replay_returns_the_identical_receipt(api: TestClient, auth: dict) -> None:
    content = pdf_bytes("idem")
    first = upload(api, auth, content, **{"Idempotency-Key": "same"})
    upload(api, auth, pdf_bytes("other"))  # the tree grows in between
    again = upload(api, auth, content, **{"Idempotency-Key": "same"})
    assert again == first

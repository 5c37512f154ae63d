"""Seal registry, sealing and signing through the HTTP API, checked by outside tools.

Every PDF the service seals or signs here goes through poppler's ``pdfsig`` ("Signature
is Valid", "Total document signed" for the last signature), ``openssl cms -verify``
against the development root and ``openssl ts -verify`` for each signature timestamp.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.pdf_utils.writer import PageObject, PdfFileWriter

from dangan.api import create_app
from dangan.bootstrap import Backends
from dangan.config import Settings
from dangan.ledger import merkle
from tests.conftest import make_client
from tests.signing.conftest import needs_openssl, write_pem
from tests.signing.pades_tools import (
    extract_signatures,
    needs_pdfsig,
    openssl_cms_verify,
    openssl_ts_verify,
    pdfsig,
    seal_png,
)

ORG = "北京市数据局"


def pages_pdf(count: int) -> bytes:
    """An A4 PDF of ``count`` light grey pages."""
    writer = PdfFileWriter()
    for _ in range(count):
        stream = generic.StreamObject(stream_data=b"0.9 g 0 0 595 842 re f")
        writer.insert_page(PageObject(contents=writer.add_object(stream), media_box=(0, 0, 595, 842)))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


@pytest.fixture
def api(settings: Settings, backends: Backends) -> Iterator[TestClient]:
    with TestClient(create_app(settings, backends=backends)) as client:
        yield client


@pytest.fixture
def keys(backends: Backends) -> dict[str, dict[str, str]]:
    """Bearer headers: an approval system of ORG, its seal administrator, a stranger."""
    def bearer(*scopes: str, org: str = ORG) -> dict[str, str]:
        return {"Authorization": f"Bearer {make_client(backends, *scopes, org=org).api_key}"}

    return {
        "system": bearer("documents:read", "documents:write", "documents:sign", "seal:use"),
        "admin": bearer("seals:admin", "seal:use"),
        "stranger": bearer("documents:read", "documents:write", "seal:use", org="other-org"),
    }


def upload(api: TestClient, headers: dict[str, str], content: bytes, org: str = ORG) -> str:
    meta = {"title": "审批结果", "kind": "approval-result", "organisation": org}
    response = api.post(
        "/v1/documents",
        headers=headers,
        files={"file": ("a.pdf", content, "application/pdf"), "metadata": (None, json.dumps(meta))},
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


def register(api: TestClient, headers: dict[str, str], **body: object) -> dict:
    payload = {"organisation": ORG, "name": "北京市数据局公章", "kind": "official", **body}
    response = api.post("/v1/seals", headers=headers, json=payload)
    assert response.status_code == 201, response.text
    return response.json()


def content(api: TestClient, headers: dict[str, str], doc: str, version: int) -> bytes:
    response = api.get(f"/v1/documents/{doc}/content?version={version}", headers=headers)
    assert response.status_code == 200
    return response.content


def check_with_outside_tools(pdf: bytes, work: Path, settings: Settings, backends: Backends) -> None:
    """pdfsig, openssl cms -verify and openssl ts -verify on every signature of ``pdf``."""
    work.mkdir(parents=True, exist_ok=True)
    pdf_path = work / "signed.pdf"
    pdf_path.write_bytes(pdf)
    blocks = pdfsig(pdf_path, None)
    signatures = extract_signatures(pdf)
    assert len(blocks) == len(signatures) >= 1
    for block in blocks:
        assert "Signature Validation: Signature is Valid." in block, block
    assert "Total document signed" in blocks[-1]
    pki = backends.signing.pki
    root_pem = write_pem(work / "root.pem", [pki.root])
    untrusted = write_pem(work / "untrusted.pem", [pki.tsa.certificate, pki.issuing])
    for signature in signatures:
        assert "Verification successful" in openssl_cms_verify(signature, work, root_pem)
        if signature.timestamp_token() is not None:
            assert "Verification: OK" in openssl_ts_verify(signature, work, root_pem, untrusted)


def validation(api: TestClient, headers: dict[str, str], doc: str) -> dict:
    response = api.get(f"/v1/documents/{doc}/validation", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def test_register_seal_with_generated_image(api: TestClient, keys: dict, backends: Backends) -> None:
    seal = register(api, keys["admin"], kind="contract")
    assert seal["status"] == "active"
    assert "DEVELOPMENT" in seal["certificate_subject"]
    proof = seal["ledger"]
    entry = json.loads(proof["entry"])
    assert entry["type"] == "seal.registered"
    assert entry["subject"]["seal"] == seal["id"]
    assert merkle.leaf_hash(proof["entry"].encode()).hex() == proof["leaf_hash"]
    image = api.get(f"/v1/seals/{seal['id']}/image", headers=keys["admin"])
    assert image.headers["content-type"] == "image/png" and image.content.startswith(b"\x89PNG")
    pem = api.get(f"/v1/seals/{seal['id']}/certificate", headers=keys["admin"])
    assert pem.text.startswith("-----BEGIN CERTIFICATE-----")
    listed = api.get("/v1/seals", headers=keys["system"]).json()
    assert [s["id"] for s in listed] == [seal["id"]]


def test_registration_is_refused_cleanly(api: TestClient, keys: dict, backends: Backends) -> None:
    before = backends.engine.connect().exec_driver_sql("select count(*) from ledger_entries").scalar()
    no_admin = api.post(
        "/v1/seals", headers=keys["system"],
        json={"organisation": ORG, "name": "x", "kind": "official"},
    )
    assert no_admin.status_code == 403
    other_org = api.post(
        "/v1/seals", headers=keys["admin"],
        json={"organisation": "other-org", "name": "x", "kind": "official"},
    )
    assert other_org.status_code == 403
    bad_png = api.post(
        "/v1/seals", headers=keys["admin"],
        json={"organisation": ORG, "name": "x", "kind": "official",
              "image": {"png_base64": base64.b64encode(b"not a png").decode()}},
    )
    assert bad_png.status_code in (400, 422) and bad_png.headers["content-type"].startswith(
        "application/problem+json"
    )
    outside = api.post(
        "/v1/seals", headers=keys["admin"],
        json={"organisation": ORG, "name": "x", "kind": "official",
              "key": {"type": "pkcs12", "path": "/etc/passwd", "passphrase_file": "/etc/hostname"}},
    )
    assert outside.status_code == 400 and "DANGAN_KEY_DIR" in outside.json()["detail"]
    module = api.post(
        "/v1/seals", headers=keys["admin"],
        json={"organisation": ORG, "name": "x", "kind": "official",
              "key": {"type": "pkcs11", "module": "/usr/lib/x86_64-linux-gnu/libc.so.6",
                      "token_label": "t", "key_label": "k", "pin_file": "pin"}},
    )
    assert module.status_code == 400 and "DANGAN_PKCS11_MODULES" in module.json()["detail"]
    after = backends.engine.connect().exec_driver_sql("select count(*) from ledger_entries").scalar()
    assert after == before


@needs_pdfsig
@needs_openssl
def test_seal_sign_and_cross_page_seal_in_sequence(
    api: TestClient, keys: dict, settings: Settings, backends: Backends, tmp_path: Path
) -> None:
    seal = register(api, keys["admin"], image={"png_base64": base64.b64encode(seal_png()).decode()})
    doc = upload(api, keys["system"], pages_pdf(3))

    sealed = api.post(
        f"/v1/documents/{doc}/seal", headers=keys["system"],
        json={"seal_id": seal["id"], "page": 1, "x": 120, "y": 200, "reason": "审批通过",
              "location": "北京", "operator": "王芳"},
    )
    assert sealed.status_code == 201, sealed.text
    receipt = sealed.json()
    assert receipt["version"] == 2
    entry = json.loads(receipt["ledger"]["entry"])
    assert entry["type"] == "document.sealed"
    assert entry["subject"]["seal"] == seal["id"] and entry["subject"]["previous_version"] == 1
    assert "王芳" not in receipt["ledger"]["entry"]  # no personal data in the ledger
    v1, v2 = content(api, keys["system"], doc, 1), content(api, keys["system"], doc, 2)
    assert v2.startswith(v1)  # an incremental update; version 1 is unchanged
    check_with_outside_tools(v2, tmp_path / "v2", settings, backends)

    signed = api.post(
        f"/v1/documents/{doc}/sign", headers=keys["system"],
        json={"officer_id": "E-1024", "officer_name": "张明", "page": 2, "x": 20, "y": 40,
              "text": "张明 审核同意"},
    )
    assert signed.status_code == 201, signed.text
    assert signed.json()["version"] == 3
    assert json.loads(signed.json()["ledger"]["entry"])["type"] == "document.signed"
    assert "张明" in signed.json()["signer"]["subject"]

    cross = api.post(
        f"/v1/documents/{doc}/seal", headers=keys["system"],
        json={"seal_id": seal["id"], "cross_page": True},
    )
    assert cross.status_code == 201, cross.text
    v4 = content(api, keys["system"], doc, 4)
    check_with_outside_tools(v4, tmp_path / "v4", settings, backends)
    assert len(extract_signatures(v4)) == 3  # the cross-page seal is one signature

    # The cross-page seal: one field, a widget at the right edge of every page.
    reader = PdfFileReader(io.BytesIO(v4))
    fields = [f.get_object() for f in reader.root["/AcroForm"]["/Fields"]]
    cross_field = fields[-1]
    widgets = [w.get_object() for w in cross_field["/Kids"]]
    assert len(widgets) == 3
    for index, widget in enumerate(widgets):
        assert widget["/P"].get_object() == reader.find_page_for_modification(index)[0].get_object()
        assert float(widget["/Rect"][2]) == pytest.approx(595)

    report = validation(api, keys["system"], doc)
    assert report["indication"] == "TOTAL_PASSED", report
    assert len(report["signatures"]) == 3

    usage = api.get(f"/v1/seals/{seal['id']}/usage", headers=keys["admin"]).json()
    assert [(u["document_id"], u["version"]) for u in usage["items"]] == [(doc, 2), (doc, 4)]
    assert usage["items"][0]["operator"] == "王芳"
    assert usage["items"][0]["ledger_seq"] == receipt["ledger"]["seq"]
    assert usage["items"][0]["client_name"] == "test system"


def test_lifecycle_is_recorded_and_enforced(api: TestClient, keys: dict, backends: Backends) -> None:
    seal = register(api, keys["admin"])
    doc = upload(api, keys["system"], pages_pdf(1))
    path = f"/v1/seals/{seal['id']}"

    def seal_it() -> object:
        return api.post(f"/v1/documents/{doc}/seal", headers=keys["system"],
                        json={"seal_id": seal["id"], "level": "B-B"})

    suspended = api.post(f"{path}/suspend", headers=keys["admin"], json={"reason": "印章送检"})
    assert suspended.status_code == 200 and suspended.json()["status"] == "suspended"
    assert json.loads(suspended.json()["ledger"]["entry"])["type"] == "seal.suspended"
    refused = seal_it()
    assert refused.status_code == 409 and refused.json()["code"] == "seal_not_active"
    assert api.post(f"{path}/reinstate", headers=keys["admin"]).json()["status"] == "active"
    assert seal_it().status_code == 201
    revoked = api.post(f"{path}/revoke", headers=keys["admin"], json={"reason": "遗失"})
    assert revoked.json()["status"] == "revoked"
    assert [h["status"] for h in revoked.json()["history"]] == ["suspended", "active", "revoked"]
    assert revoked.json()["history"][-1]["reason"] == "遗失"
    assert seal_it().json()["code"] == "seal_not_active"
    again = api.post(f"{path}/reinstate", headers=keys["admin"])
    assert again.status_code == 409 and again.json()["code"] == "seal_transition_refused"
    kinds = [
        json.loads(body)["type"]
        for (body,) in backends.engine.connect().exec_driver_sql(
            "select body from ledger_entries order by seq"
        )
    ]
    assert [k for k in kinds if k.startswith(("seal.", "document.sealed"))] == [
        "seal.registered", "seal.suspended", "seal.reinstated", "document.sealed", "seal.revoked"
    ]
    usage = api.get(f"{path}/usage", headers=keys["admin"]).json()["items"]
    assert len(usage) == 1


def test_sealing_refuses_what_it_must(api: TestClient, keys: dict, backends: Backends) -> None:
    seal = register(api, keys["admin"])
    doc = upload(api, keys["system"], pages_pdf(1))
    other = upload(api, keys["stranger"], pages_pdf(2), org="other-org")

    def post(doc_id: str, headers: dict, **body: object) -> object:
        return api.post(f"/v1/documents/{doc_id}/seal", headers=headers,
                        json={"seal_id": seal["id"], **body})

    assert post(doc, keys["stranger"]).status_code == 403  # another organisation's seal
    assert post(other, keys["system"]).status_code == 403  # another organisation's document
    assert post("0190f000-0000-7000-8000-000000000000", keys["system"]).status_code == 404
    off_page = post(doc, keys["system"], x=580, y=10)
    assert off_page.status_code == 400 and "page" in off_page.json()["detail"]
    one_page = post(doc, keys["system"], cross_page=True)
    assert one_page.status_code == 400
    assert post(doc, keys["system"], page=5).status_code == 400
    not_pdf = api.post(
        "/v1/documents", headers=keys["system"],
        files={"file": ("a.json", b'{"a": 1}', "application/json"),
               "metadata": (None, json.dumps({"title": "t", "kind": "k", "organisation": ORG}))},
    ).json()["id"]
    assert post(not_pdf, keys["system"]).status_code == 415
    versions = api.get(f"/v1/documents/{doc}", headers=keys["system"]).json()["versions"]
    assert len(versions) == 1


@needs_pdfsig
def test_pkcs11_seal_on_softhsm(
    settings: Settings, backends: Backends, softhsm_seal_keys, tmp_path: Path, keys: dict
) -> None:
    key = softhsm_seal_keys.by_type["p256"]
    key_dir = tmp_path / "keys"
    key_dir.mkdir()
    (key_dir / "hsm.pin").write_text(softhsm_seal_keys.user_pin + "\n")
    hsm_settings = settings.model_copy(
        update={"key_dir": key_dir, "pkcs11_modules": (str(softhsm_seal_keys.module_path),)}
    )
    with TestClient(create_app(hsm_settings, backends=backends)) as api:
        seal = register(
            api, keys["admin"],
            key={"type": "pkcs11", "module": str(softhsm_seal_keys.module_path),
                 "token_label": key.token_label, "key_label": key.label, "pin_file": "hsm.pin"},
        )
        assert "HSM" in seal["certificate_subject"]
        doc = upload(api, keys["system"], pages_pdf(1))
        sealed = api.post(f"/v1/documents/{doc}/seal", headers=keys["system"],
                          json={"seal_id": seal["id"]})
        assert sealed.status_code == 201, sealed.text
        pdf = content(api, keys["system"], doc, 2)
    (tmp_path / "hsm.pdf").write_bytes(pdf)
    [block] = pdfsig(tmp_path / "hsm.pdf", None)
    assert "Signature is Valid." in block and "Total document signed" in block


def test_retried_seal_with_idempotency_key_seals_once(
    api: TestClient, keys: dict, backends: Backends
) -> None:
    seal = register(api, keys["admin"])
    doc = upload(api, keys["system"], pages_pdf(1))
    headers = {**keys["system"], "Idempotency-Key": "seal-2026-0001"}
    body = {"seal_id": seal["id"], "level": "B-B"}
    first = api.post(f"/v1/documents/{doc}/seal", headers=headers, json=body)
    again = api.post(f"/v1/documents/{doc}/seal", headers=headers, json=body)
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    other = api.post(f"/v1/documents/{doc}/seal", headers=headers, json={**body, "page": 1, "x": 10})
    assert other.status_code == 409 and other.json()["code"] == "idempotency_conflict"
    versions = api.get(f"/v1/documents/{doc}", headers=keys["system"]).json()["versions"]
    assert [v["version"] for v in versions] == [1, 2]
    usage = api.get(f"/v1/seals/{seal['id']}/usage", headers=keys["admin"]).json()["items"]
    assert len(usage) == 1


@needs_pdfsig
@needs_openssl
def test_certified_b_lta_seal_then_no_further_change(
    api: TestClient, keys: dict, settings: Settings, backends: Backends, tmp_path: Path
) -> None:
    seal = register(api, keys["admin"])
    doc = upload(api, keys["system"], pages_pdf(1))
    certified = api.post(
        f"/v1/documents/{doc}/seal", headers=keys["system"],
        json={"seal_id": seal["id"], "level": "B-LTA", "certify": True, "docmdp": "no_changes"},
    )
    assert certified.status_code == 201, certified.text
    # B-LTA: the DSS and a document timestamp follow the seal (ETSI EN 319 142-1
    # §5.4.2, §5.4.3), so the seal covers its own revision, not the whole file; pdfsig
    # lists the document timestamp but cannot check one.
    pdf = content(api, keys["system"], doc, 2)
    (tmp_path / "lta.pdf").write_bytes(pdf)
    blocks = pdfsig(tmp_path / "lta.pdf", None)
    assert "Signature Validation: Signature is Valid." in blocks[0]
    assert "Signature Field Name: Timestamp" in blocks[-1]
    seal_signature = extract_signatures(pdf)[0]
    pki = backends.signing.pki
    root_pem = write_pem(tmp_path / "root.pem", [pki.root])
    untrusted = write_pem(tmp_path / "untrusted.pem", [pki.tsa.certificate, pki.issuing])
    assert "Verification successful" in openssl_cms_verify(seal_signature, tmp_path, root_pem)
    assert "Verification: OK" in openssl_ts_verify(seal_signature, tmp_path, root_pem, untrusted)
    report = validation(api, keys["system"], doc)
    assert report["indication"] == "TOTAL_PASSED", report
    [signature] = [s for s in report["signatures"] if s["kind"] != "document_timestamp"]
    assert signature["pades_level"] == "B-LTA"
    refused = api.post(f"/v1/documents/{doc}/seal", headers=keys["system"],
                       json={"seal_id": seal["id"]})
    assert refused.status_code == 422 and refused.json()["code"] == "pdf_not_signable"
    versions = api.get(f"/v1/documents/{doc}", headers=keys["system"]).json()["versions"]
    assert len(versions) == 2

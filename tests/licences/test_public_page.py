"""The public verification page over plain HTTP: headers, escaping, what a forged token
shows (nothing), the upper-case QR path, the rate limit and the access log. The page in a
real browser is tested in test_public_page_browser.py."""

from __future__ import annotations

import base64
import hashlib
import logging
import re
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from dangan.api import create_app
from dangan.api.public_page import render_page
from dangan.bootstrap import Backends
from dangan.licences.token import token_from_payload
from dangan.licences.verification import PublicLicence, Verification
from tests.licences.conftest import food_licence, person_licence

_STATUS = re.compile(r'data-status="([a-z_]+)"')


def issue(api: TestClient, headers: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    response = api.post("/v1/licences", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def page(api: TestClient, path: str) -> tuple[str, str]:
    """The page at ``path`` (a 200, as every outcome is) and its data-status."""
    response = api.get(path)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    [status] = _STATUS.findall(response.text)
    return response.text, status


def test_page_shows_the_licence_under_strict_headers(
    licence_api: TestClient, issuer: dict[str, str]
) -> None:
    licence = issue(licence_api, issuer, person_licence())
    token = token_from_payload(licence["verification_url"])
    response = licence_api.get(f"/v/{token}")
    assert response.status_code == 200
    headers = response.headers
    assert headers["cache-control"] == "no-store"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["x-content-type-options"] == "nosniff"
    csp = dict(d.strip().split(" ", 1) for d in headers["content-security-policy"].split(";"))
    assert csp["default-src"] == "'none'"
    assert csp["form-action"] == csp["frame-ancestors"] == csp["base-uri"] == "'none'"
    assert "unsafe" not in headers["content-security-policy"]
    # The policy admits exactly the inline script and stylesheet the page carries.
    html = response.text
    for tag, directive in (("script", "script-src"), ("style", "style-src")):
        [inline] = re.findall(rf"<{tag}>(.*?)</{tag}>", html, re.DOTALL)
        digest = base64.b64encode(hashlib.sha256(inline.encode()).digest()).decode()
        assert csp[directive] == f"'sha256-{digest}'"
    assert html.startswith("<!DOCTYPE html>\n<html lang=\"zh-CN\">")
    assert 'data-status="valid"' in html and "有效" in html and "Valid" in html
    assert licence["identifier"] in html
    assert licence["document"]["sha256"] in html
    assert "张*明" in html and "张小明" not in html
    assert "食品经营许可证" in html
    assert "11330100MB0000001R" in html
    # Nothing in the page talks to the network; the PDF is hashed locally.
    assert 'type="file"' in html and "crypto.subtle.digest" in html
    for call in ("fetch(", "XMLHttpRequest", "sendBeacon", "WebSocket", "<form", "http://", "https://"):
        assert call not in html, call


def test_the_qr_upper_case_path_and_any_case_token(licence_api: TestClient, issuer: dict[str, str]) -> None:
    licence = issue(licence_api, issuer, food_licence())
    token = token_from_payload(licence["verification_url"])
    assert page(licence_api, f"/V/{token}")[1] == "valid"
    assert page(licence_api, f"/v/{token.lower()}")[1] == "valid"
    assert licence["verification_url"].endswith(f"/v/{token}")


def test_lifecycle_shows_on_the_page(licence_api: TestClient, issuer: dict[str, str]) -> None:
    licence = issue(licence_api, issuer, food_licence())
    path = f"/v/{token_from_payload(licence['verification_url'])}"
    base = f"/v1/licences/{licence['id']}"
    licence_api.post(f"{base}/suspend", json={"reason_code": "under_investigation", "reason": "投诉核查"}, headers=issuer)
    html, status = page(licence_api, path)
    assert status == "suspended" and "已暂停" in html and "Suspended" in html
    assert "投诉核查" not in html and "under_investigation" not in html
    licence_api.post(f"{base}/revoke", json={"reason_code": "obtained_by_fraud"}, headers=issuer)
    html, status = page(licence_api, path)
    assert status == "revoked" and "已撤销" in html and "Revoked" in html
    assert "示范****公司" in html and "obtained_by_fraud" not in html


def test_forged_tokens_show_nothing_but_not_recognised(licence_api: TestClient, issuer: dict[str, str]) -> None:
    licence = issue(licence_api, issuer, food_licence())
    token = token_from_payload(licence["verification_url"])
    altered = token[:40] + ("A" if token[40] != "A" else "B") + token[41:]
    bodies = set()
    for candidate in (altered, "AAAA", "X" * 300, token[:-4], token + "A", "%3Cscript%3E", "Z" * 5000):
        html, status = page(licence_api, f"/v/{candidate}")
        assert status == "not_recognised"
        assert "此二维码无法识别" in html and "This code is not recognised" in html
        markup = re.sub(r"<(style|script)>.*?</\1>", "", html, flags=re.DOTALL)
        for detail in (licence["identifier"], licence["document"]["sha256"], "示范", "SPJY",
                       "食品经营许可证", 'type="file"', "fingerprint", "<dl", candidate[:20]):
            assert detail not in markup, detail
        # The same page whatever failed: no oracle for a forger. Only the time differs.
        bodies.add(re.sub(r"<time[^>]*>[^<]*</time>", "", html))
    assert len(bodies) == 1


def test_output_is_escaped() -> None:
    hostile = '"><script>alert(1)</script>'
    licence = PublicLicence(
        identifier=hostile, type_code="SPJY", type_name_zh=hostile, type_name_en=hostile,
        issuer=hostile, issuer_uscc=hostile, holder=hostile, valid_from=date(2026, 1, 1),
        valid_until=None, issued_on=date(2026, 1, 1), pdf_sha256=hostile,
    )
    verification = Verification("valid", datetime(2026, 1, 1, tzinfo=UTC), licence)
    html = render_page(verification, timezone=ZoneInfo("Asia/Shanghai"))
    assert "alert(1)" in html
    assert "<script>alert" not in html
    assert html.count("&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;") == 8
    assert "长期" in html and "No expiry" in html
    assert "2026-01-01 08:00:00 UTC+08:00" in html and "2026年1月1日" in html and "1 Jan 2026" in html


def test_page_is_rate_limited(settings, backends: Backends, examples: list[str]) -> None:
    limited = settings.model_copy(update={"public_rate_limit": 3})
    with TestClient(create_app(limited, backends=backends)) as api:
        # One bucket per address, shared by both paths and the JSON route.
        answers = [api.get(path) for path in ("/v/AAAA", "/V/AAAA", "/v/AAAA", "/V/AAAA", "/v/AAAA")]
    assert [a.status_code for a in answers] == [200, 200, 200, 429, 429]
    assert int(answers[3].headers["Retry-After"]) >= 1
    assert answers[3].json()["code"] == "too_many_requests"


def test_access_log_names_the_route_not_the_token(
    licence_api: TestClient, issuer: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    licence = issue(licence_api, issuer, person_licence())
    token = token_from_payload(licence["verification_url"])
    caplog.clear()
    with caplog.at_level(logging.DEBUG):
        page(licence_api, f"/v/{token}")
        page(licence_api, f"/V/{token}")
        page(licence_api, f"/v/{token[:-4]}")
        # Paths no route matches: a trailing slash or segment, the JSON route's own.
        licence_api.get(f"/v/{token}/x", follow_redirects=False)
        licence_api.get(f"/v/{token}/", follow_redirects=False)
        licence_api.get(f"/v1/public/licences/verify/{token}")
        licence_api.get("/v1/public/licences/verify", params={"token": token})
    paths = [r.path for r in caplog.records if r.name == "dangan.access"]
    assert paths == [
        "/v/{token}", "/V/{token}", "/v/{token}", "/v/…", "/v/…", "/v1/public/…",
        "/v1/public/licences/verify",
    ]
    # Our logs only: httpx's client-side log (the test's own requests) names the URL.
    for record in (r for r in caplog.records if r.name.startswith("dangan")):
        logged = repr(record.__dict__)
        for secret in (token, token[:-4], token.lower(), "张*明", licence["identifier"]):
            assert secret not in logged, (record.name, secret)

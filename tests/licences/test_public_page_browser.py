"""The public verification page in headless Chromium at phone size (390 × 844), against the
real app served by uvicorn: each status, the language toggle, the local PDF check and
labels. One server and one browser for the module; a screenshot of each status page goes
to tests/artifacts/licence-page-<status>.png."""

from __future__ import annotations

import base64
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import uvicorn
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from dangan.api import create_app
from dangan.bootstrap import initialise, open_backends
from dangan.config import Settings
from dangan.licences.examples import load_example_types
from dangan.licences.token import token_from_payload
from tests.conftest import make_client
from tests.licences.conftest import ISSUER, food_licence, person_licence, today
from tests.support.server import free_port

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"

pytestmark = pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
    reason="browser tests need Debian's chromium and chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver)",
)

WORDS = {
    "valid": ("有效", "Valid"),
    "suspended": ("已暂停", "Suspended"),
    "revoked": ("已撤销", "Revoked"),
    "expired": ("已过期", "Expired"),
    "not_recognised": ("无法识别", "Not recognised"),
}


class ShiftedClock:
    """The wall clock plus an offset the test sets (to see a licence past its last day)."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


@dataclass
class Site:
    """The served app and what the module issued on it."""

    url: str
    clock: ShiftedClock
    pages: dict[str, str]
    """A page URL per status, as the QR would open it (upper-case path)."""
    pdf: bytes
    """The issued PDF of the valid licence."""
    licence: dict
    """The valid licence, as the API answered."""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, shared_pki: tuple[Path, Path]) -> Iterator[Site]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    pki_dir, passphrase_file = shared_pki
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("page") / "data",
        pki_dir=pki_dir,
        pki_passphrase_file=passphrase_file,
        public_url=url,
        public_rate_limit=10_000,
    )
    initialise(settings)
    clock = ShiftedClock()
    backends = open_backends(settings, clock=clock)
    load_example_types(settings, backends)
    key = make_client(backends, "licences:issue", "licences:read", "documents:read", org=ISSUER)
    issuer = {"Authorization": f"Bearer {key.api_key}"}
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, backends=backends),  # closes the backends on shutdown
            host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="on",
        )
    )
    thread = threading.Thread(target=server.run, name="verification-page-server", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        with httpx.Client(base_url=url, headers=issuer, timeout=60) as api:
            yield _issue_all(api, url, clock)
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def _issue_all(api: httpx.Client, url: str, clock: ShiftedClock) -> Site:
    def issue(body: dict) -> dict:
        response = api.post("/v1/licences", json=body)
        assert response.status_code == 201, response.text
        answer = response.json()
        # The page must be where the QR points: the public URL is this server.
        assert answer["verification_url"].startswith(f"{url}/v/")
        return answer

    valid = issue(person_licence())
    suspended = issue(food_licence())
    revoked = issue(food_licence())
    expiring = issue(food_licence(valid_until=today().isoformat()))
    for licence, action, code in ((suspended, "suspend", "under_investigation"),
                                  (revoked, "revoke", "obtained_by_fraud")):
        step = api.post(f"/v1/licences/{licence['id']}/{action}", json={"reason_code": code})
        assert step.status_code == 200, step.text
    tokens = {
        "valid": token_from_payload(valid["verification_url"]),
        "suspended": token_from_payload(suspended["verification_url"]),
        "revoked": token_from_payload(revoked["verification_url"]),
        "expired": token_from_payload(expiring["verification_url"]),
    }
    token = tokens["valid"]
    tokens["not_recognised"] = token[:40] + ("A" if token[40] != "A" else "B") + token[41:]
    pdf = api.get(f"/v1/documents/{valid['document']['id']}/content")
    assert pdf.status_code == 200
    pages = {status: f"{url}/V/{token}" for status, token in tokens.items()}
    return Site(url=url, clock=clock, pages=pages, pdf=pdf.content, licence=valid)


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    with tempfile.TemporaryDirectory(prefix="dangan-chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--no-first-run", "--disable-background-networking", "--disable-component-update",
                     "--disable-sync", f"--user-data-dir={profile}"):
            options.add_argument(flag)
        options.add_experimental_option(
            "mobileEmulation", {"deviceMetrics": {"width": 390, "height": 844, "pixelRatio": 2}}
        )
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        # A fixed path: selenium-manager must never try to download a driver.
        driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
        try:
            yield driver
        finally:
            driver.quit()


def open_page(browser: WebDriver, url: str) -> None:
    browser.get(url)
    WebDriverWait(browser, 10).until(
        lambda d: d.execute_script("return document.readyState") == "complete"
    )
    # The script shows the language buttons: it ran under the page's CSP.
    WebDriverWait(browser, 10).until(lambda d: d.find_element(By.CSS_SELECTOR, ".langs").is_displayed())


def console_errors(browser: WebDriver) -> list[str]:
    """Errors the page logged since the last call (a CSP violation would be one)."""
    return [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]


def screenshot(browser: WebDriver, status: str) -> Path:
    """The whole page (beyond the viewport) as a PNG in tests/artifacts."""
    ARTIFACTS.mkdir(exist_ok=True)
    height = browser.execute_script("return document.documentElement.scrollHeight")
    shot = browser.execute_cdp_cmd(
        "Page.captureScreenshot",
        {"format": "png", "captureBeyondViewport": True,
         "clip": {"x": 0, "y": 0, "width": 390, "height": height, "scale": 1}},
    )
    path = ARTIFACTS / f"licence-page-{status}.png"
    path.write_bytes(base64.b64decode(shot["data"]))
    return path


@pytest.mark.parametrize("status", list(WORDS))
def test_each_status_page(site: Site, browser: WebDriver, status: str) -> None:
    if status == "expired":
        site.clock.offset = timedelta(days=2)  # past the licence's last day
    try:
        open_page(browser, site.pages[status])
    finally:
        site.clock.offset = timedelta(0)
    assert browser.execute_script("return document.documentElement.lang") == "zh-CN"
    block = browser.find_element(By.CSS_SELECTOR, "[data-status]")
    assert block.get_attribute("data-status") == status
    zh, en = WORDS[status]
    assert block.find_element(By.TAG_NAME, "h1").text == zh
    icon = block.find_element(By.CSS_SELECTOR, "svg[role=img]")
    assert icon.get_attribute("aria-label") == zh and icon.is_displayed()
    assert en not in browser.find_element(By.TAG_NAME, "body").text  # English is hidden
    # The page fits a phone: nothing scrolls sideways.
    assert browser.execute_script("return document.documentElement.scrollWidth") <= 390
    cards = browser.find_elements(By.CSS_SELECTOR, ".card")
    if status == "not_recognised":
        assert cards == []
        assert "此二维码无法识别" in block.text
        assert site.licence["identifier"] not in browser.page_source
    else:
        assert browser.find_element(By.CSS_SELECTOR, "[data-field=identifier]").text
        fingerprint = browser.find_element(By.ID, "fingerprint")
        assert fingerprint.is_displayed() and len(fingerprint.text.replace("\n", "")) == 64
        assert browser.find_element(By.ID, "pdf-file").is_displayed()
    if status == "valid":
        assert browser.find_element(By.CSS_SELECTOR, "[data-field=holder]").text == "张*明"
        assert browser.find_element(By.CSS_SELECTOR, "[data-field=identifier]").text == site.licence["identifier"]
        assert fingerprint.text.replace("\n", "") == site.licence["document"]["sha256"]
    assert console_errors(browser) == []
    path = screenshot(browser, status)
    assert path.stat().st_size > 1000 and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_language_toggle(site: Site, browser: WebDriver) -> None:
    open_page(browser, site.pages["valid"])
    zh_button, en_button = browser.find_elements(By.CSS_SELECTOR, ".langs button")
    assert (zh_button.get_attribute("aria-pressed"), en_button.get_attribute("aria-pressed")) == ("true", "false")
    en_button.click()
    WebDriverWait(browser, 5).until(lambda d: d.execute_script("return document.documentElement.lang") == "en")
    body = browser.find_element(By.TAG_NAME, "body").text
    for text in ("Valid", "Licence details", "Licence type", "Food Business Licence", "Valid until",
                 "PDF fingerprint (SHA-256)", "Check a PDF I received", "Checked at"):
        assert text in body, text
    for text in ("有效", "许可证信息", "许可证类型", "核对我收到的"):
        assert text not in body, text
    assert (zh_button.get_attribute("aria-pressed"), en_button.get_attribute("aria-pressed")) == ("false", "true")
    assert browser.find_element(By.CSS_SELECTOR, "svg[role=img]").get_attribute("aria-label") == "Valid"
    assert browser.title == "Licence check: Valid"
    # Kept in the fragment (never sent to the server): a reload stays in English.
    assert browser.current_url.endswith("#en")
    browser.refresh()
    WebDriverWait(browser, 5).until(lambda d: d.execute_script("return document.documentElement.lang") == "en")
    browser.find_elements(By.CSS_SELECTOR, ".langs button")[0].click()
    WebDriverWait(browser, 5).until(lambda d: d.execute_script("return document.documentElement.lang") == "zh-CN")
    assert "许可证信息" in browser.find_element(By.TAG_NAME, "body").text
    assert not browser.current_url.endswith("#en")


def check_file(browser: WebDriver, path: Path) -> tuple[str, str]:
    """Choose ``path`` in the page's file input; the result's data-result and text."""
    browser.find_element(By.ID, "pdf-file").send_keys(str(path))
    region = browser.find_element(By.ID, "pdf-result")
    WebDriverWait(browser, 10).until(
        lambda _: region.get_attribute("data-result") in ("match", "mismatch", "error")
    )
    return region.get_attribute("data-result"), region.text


def test_local_pdf_check(site: Site, browser: WebDriver, tmp_path: Path) -> None:
    issued, changed = tmp_path / "licence.pdf", tmp_path / "changed.pdf"
    issued.write_bytes(site.pdf)
    changed.write_bytes(site.pdf + b"\n")
    open_page(browser, site.pages["valid"])
    region = browser.find_element(By.ID, "pdf-result")
    assert region.get_attribute("aria-live") == "polite"
    assert check_file(browser, issued) == ("match", "✓ 与签发的文件一致")
    assert check_file(browser, changed)[0] == "mismatch"
    assert "与签发的文件不一致" in region.text
    browser.find_elements(By.CSS_SELECTOR, ".langs button")[1].click()
    assert "Does not match the issued file" in region.text
    # The file never left the browser: the page made no request at all after loading.
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0
    assert console_errors(browser) == []


def test_controls_have_labels(site: Site, browser: WebDriver) -> None:
    open_page(browser, site.pages["valid"])
    inputs = browser.find_elements(By.CSS_SELECTOR, "input, select, textarea")
    assert inputs
    for control in inputs:
        ident = control.get_attribute("id")
        assert ident, control.get_attribute("outerHTML")
        [label] = browser.find_elements(By.CSS_SELECTOR, f"label[for='{ident}']")
        assert label.text.strip() and label.is_displayed()
        assert control.accessible_name.strip()
    buttons = browser.find_elements(By.TAG_NAME, "button")
    assert len(buttons) == 2
    for button in buttons:
        assert button.accessible_name.strip() in ("中文", "English")
        assert button.size["height"] >= 44  # a tap target (WCAG 2.5.5)
    group = browser.find_element(By.CSS_SELECTOR, ".langs")
    assert group.get_attribute("role") == "group" and group.get_attribute("aria-label")

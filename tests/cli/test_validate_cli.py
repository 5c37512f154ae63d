"""``dangan validate``: exit codes, trust roots, and the same JSON as ``POST /v1/validate``.

Most runs go through Typer's runner in this process (each still validates in a worker
process); one runs the real ``python -m dangan`` entry point.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from dangan.api import create_app
from dangan.bootstrap import Backends
from dangan.cli import app
from dangan.config import Settings
from dangan.signing.pki import DevPki
from tests.conftest import make_client
from tests.signing.pades_tools import one_page_pdf

pytest_plugins = ["tests.support.signed_pdfs"]


@pytest.fixture
def env(settings: Settings) -> dict[str, str]:
    """The environment of a deployment whose data dir holds the run's development PKI."""
    return {
        "DANGAN_DATA_DIR": str(settings.data_dir),
        "DANGAN_PKI_DIR": str(settings.effective_pki_dir),
        "DANGAN_PKI_PASSPHRASE_FILE": str(settings.effective_pki_passphrase_file),
    }


@pytest.fixture
def files(tmp_path: Path, signed_pdf: bytes, tampered_pdf: bytes) -> dict[str, Path]:
    contents = {
        "signed": signed_pdf,
        "tampered": tampered_pdf,
        "unsigned": one_page_pdf(),
        "garbage": b"\x00\xffnot a pdf at all" * 100,
    }
    for name, content in contents.items():
        (tmp_path / f"{name}.pdf").write_bytes(content)
    return {name: tmp_path / f"{name}.pdf" for name in contents}


def run(*args: str, env: dict[str, str]):  # noqa: ANN201 - a click Result
    return CliRunner().invoke(app, ["validate", *args], env=env)


def test_a_signed_pdf_passes_with_exit_0(env, files) -> None:
    result = run(str(files["signed"]), env={**env, "COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("TOTAL_PASSED: ")
    [row] = [line for line in result.stdout.splitlines() if line.strip().startswith("1 ")]
    assert row.split()[1:3] == ["张伟", "TOTAL_PASSED"] and "entire file" in row
    assert "CN=张伟" in result.stdout and "DEVELOPMENT" in result.stdout


@pytest.mark.parametrize(
    ("name", "indication", "sub_indication"),
    [
        ("tampered", "TOTAL_FAILED", "HASH_FAILURE"),
        ("unsigned", "TOTAL_FAILED", "FORMAT_FAILURE"),
        ("garbage", "TOTAL_FAILED", "FORMAT_FAILURE"),
    ],
)
def test_failures_exit_1(env, files, name: str, indication: str, sub_indication: str) -> None:
    result = run("--json", str(files[name]), env=env)
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert (report["indication"], report["sub_indication"]) == (indication, sub_indication)


def test_without_trust_roots_the_chain_is_indeterminate(tmp_path: Path, files) -> None:
    result = run("--json", str(files["signed"]), env={"DANGAN_DATA_DIR": str(tmp_path / "none")})
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert (report["indication"], report["sub_indication"]) == (
        "INDETERMINATE", "NO_CERTIFICATE_CHAIN_FOUND"
    )
    assert "no trust roots" in result.stderr


def test_trust_files_add_roots(tmp_path: Path, files, pki: DevPki) -> None:
    root = tmp_path / "root.pem"
    root.write_bytes(pki.root.public_bytes(serialization.Encoding.PEM))
    result = run("--trust", str(root), str(files["signed"]),
                 env={"DANGAN_DATA_DIR": str(tmp_path / "none")})
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("case", ["missing file", "missing trust file", "trust file not PEM"])
def test_usage_errors_exit_2(env, files, case: str) -> None:
    args = {
        "missing file": ["/nonexistent/doc.pdf"],
        "missing trust file": ["--trust", "/nonexistent/root.pem", str(files["signed"])],
        "trust file not PEM": ["--trust", str(files["garbage"]), str(files["signed"])],
    }[case]
    result = run(*args, env=env)
    assert result.exit_code == 2, result.output


def test_json_is_what_the_api_answers(
    settings: Settings, backends: Backends, env, files
) -> None:
    """The real entry point prints the API's report: same keys, same values but the time."""
    cli = subprocess.run(
        [sys.executable, "-m", "dangan", "validate", "--json", str(files["signed"])],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert cli.returncode == 0, cli.stderr
    offline = json.loads(cli.stdout)
    auth = {"Authorization": f"Bearer {make_client(backends).api_key}"}
    with TestClient(create_app(settings, backends=backends)) as api:
        response = api.post(
            "/v1/validate", headers=auth, files={"file": ("f.pdf", files["signed"].read_bytes())}
        )
    online = response.json()
    assert offline.pop("validation_time") and online.pop("validation_time")
    assert offline == online
    assert offline["indication"] == "TOTAL_PASSED"

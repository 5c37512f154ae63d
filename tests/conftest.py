"""Shared fixtures: real databases (SQLite, PostgreSQL) and a ready app per test."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from dangan.bootstrap import Backends, initialise, open_backends
from dangan.clients import NewClient, create_client
from dangan.config import Settings
from dangan.db import create_db_engine
from tests.support.postgres import ENV as PG_ENV
from tests.support.postgres import fresh_database, postgres_admin_url


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
def settings(tmp_path: Path) -> Settings:
    """Embedded defaults in a temp data dir."""
    return Settings(data_dir=tmp_path / "data")


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

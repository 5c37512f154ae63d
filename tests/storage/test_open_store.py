"""Choosing and configuring the backend from settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from dangan.config import Settings
from dangan.storage import ObjectStore, open_store
from dangan.storage.fs import FsObjectStore
from dangan.storage.s3 import S3ObjectStore


def s3_config(tmp_path: Path, **changes: str | None) -> Settings:
    values: dict[str, object] = {
        "data_dir": tmp_path,
        "storage": "s3",
        "s3_endpoint": "http://127.0.0.1:8333",
        "s3_access_key": "access",
        "s3_secret_key": "secret",
    }
    return Settings(**(values | changes))


def test_fs_is_the_default(tmp_path: Path) -> None:
    store = open_store(Settings(data_dir=tmp_path))
    assert isinstance(store, FsObjectStore)
    assert isinstance(store, ObjectStore)
    assert store.root == (tmp_path / "objects").absolute()
    store.close()


@pytest.mark.parametrize(
    ("missing", "variable"),
    [
        ("s3_endpoint", "DANGAN_S3_ENDPOINT"),
        ("s3_access_key", "DANGAN_S3_ACCESS_KEY"),
        ("s3_secret_key", "DANGAN_S3_SECRET_KEY"),
    ],
)
def test_s3_needs_endpoint_and_keys(tmp_path: Path, missing: str, variable: str) -> None:
    with pytest.raises(ValueError, match=variable):
        open_store(s3_config(tmp_path, **{missing: None}))
    with pytest.raises(ValueError, match=variable):
        S3ObjectStore.from_settings(s3_config(tmp_path, **{missing: None}))


@pytest.mark.parametrize(
    ("endpoint", "message"),
    [
        ("ftp://127.0.0.1:21", "http"),
        ("127.0.0.1:8333", "http"),
        ("http://127.0.0.1:8333/prefix", "path"),
        ("http://127.0.0.1:8333?x=1", "path"),
    ],
)
def test_s3_endpoint_must_be_a_bare_http_url(tmp_path: Path, endpoint: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        open_store(s3_config(tmp_path, s3_endpoint=endpoint))


@pytest.mark.s3
def test_s3_when_configured(s3_settings: Settings) -> None:
    store = open_store(s3_settings)
    try:
        assert isinstance(store, S3ObjectStore)
        assert isinstance(store, ObjectStore)
        store.check()
    finally:
        store.close()

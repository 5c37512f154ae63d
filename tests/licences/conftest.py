"""Fixtures for licences: the example types registered, and API keys of their issuer and
of another department that reuses licences."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dangan.api import create_app
from dangan.bootstrap import Backends
from dangan.config import Settings
from dangan.licences.examples import load_example_types
from tests.conftest import make_client

ISSUER = "示范市市场监督管理局"
#: A valid unified social credit code (GB 32100) of a holder company.
HOLDER_USCC = "91330100MA2B3C4D5N"
#: A valid resident ID number (GB 11643) of a holder person.
HOLDER_RESIDENT_ID = "11010519491231002X"


@pytest.fixture
def examples(settings: Settings, backends: Backends) -> list[str]:
    return load_example_types(settings, backends)


@pytest.fixture
def licence_api(settings: Settings, backends: Backends, examples: list[str]) -> Iterator[TestClient]:
    with TestClient(create_app(settings, backends=backends)) as client:
        yield client


@pytest.fixture
def issuer(backends: Backends) -> dict[str, str]:
    key = make_client(backends, "licences:issue", "licences:read", "documents:read", org=ISSUER)
    return {"Authorization": f"Bearer {key.api_key}"}


@pytest.fixture
def department(backends: Backends) -> dict[str, str]:
    """Another department's approval system, which reuses licences."""
    key = make_client(backends, "licences:read", org="示范市卫生健康委员会")
    return {"Authorization": f"Bearer {key.api_key}"}


def food_licence(**overrides: Any) -> dict[str, Any]:
    """A valid request for the example food business licence."""
    body: dict[str, Any] = {
        "type": "SPJY",
        "holder": {"name": "示范市张小明餐饮有限公司", "id_type": "uscc", "id_number": HOLDER_USCC},
        "fields": {
            "legal_representative": "张小明",
            "address": "示范市东城区和平街12号",
            "premises": "示范市东城区和平街12号一层",
            "main_business": "餐饮服务经营者",
            "business_items": "热食类食品制售；冷食类食品制售；自制饮品制售",
            "daily_supervisor": "示范市东城区市场监督管理所",
        },
    }
    body.update(overrides)
    return body


def person_licence(**overrides: Any) -> dict[str, Any]:
    """A food business licence held by a person (个体经营者)."""
    return food_licence(
        holder={"name": "张小明", "id_type": "resident_id", "id_number": HOLDER_RESIDENT_ID},
        **overrides,
    )


def today() -> date:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    return datetime.now(ZoneInfo("Asia/Shanghai")).date()

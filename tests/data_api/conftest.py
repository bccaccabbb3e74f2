"""Fixtures of the data API contract tests: one real server for the session."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

_REPO_ROOT = str(Path(__file__).resolve().parents[2])
if _REPO_ROOT not in sys.path:
    sys.path.insert(0, _REPO_ROOT)

from tests.data_api.server import running_data_api  # noqa: E402

SCALE = 0.01
SEED = 7


@pytest.fixture(scope="session")
def data_api_url() -> Iterator[str]:
    """Base URL of ``python -m data_api --scale 0.01 --seed 7`` on a free port."""
    with running_data_api(scale=SCALE, seed=SEED) as base_url:
        yield base_url


@pytest.fixture
def client(data_api_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=data_api_url, timeout=30.0) as http:
        yield http


@pytest.fixture
def fresh_day() -> Callable[[], str]:
    """Makes day names no other test uses, so every test starts from a fresh cursor."""
    return lambda: f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def faults(client: httpx.Client) -> Iterator[Callable[..., dict[str, object]]]:
    """Configure fault injection on the session server; switched off again afterwards."""

    def configure(**config: object) -> dict[str, object]:
        response = client.put("/admin/faults", json=config)
        assert response.status_code == 200, response.text
        return response.json()

    yield configure
    configure(mode="none")

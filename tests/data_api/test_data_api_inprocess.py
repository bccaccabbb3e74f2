"""create_app in-process and the CLI's settings (no server process)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from data_api.__main__ import settings_from_args
from data_api.app import create_app
from data_api.batches import encode_body
from data_api.scenarios import build_frame
from data_api.settings import Settings

pytestmark = pytest.mark.timeout(30)


def test_create_app_serves_the_generated_batch() -> None:
    app = create_app(Settings(seed=3, scale=0.001))

    async def fetch() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.get("/data", params={"group_number": 2, "day": "Friday"})

    response = asyncio.run(fetch())
    assert response.status_code == 200
    assert response.content == encode_body(2, "Friday", 1, build_frame(3, 0.001, 2, "Friday", 1))


def test_flags_override_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATA_API_SEED", "5")
    monkeypatch.setenv("DATA_API_SCALE", "0.5")
    monkeypatch.setenv("DATA_API_PORT", "9000")
    settings = settings_from_args(["--seed", "9", "--min-interval", "2.5"])
    assert settings.seed == 9
    assert settings.scale == 0.5
    assert settings.port == 9000
    assert settings.min_interval_seconds == 2.5
    assert settings.host == "127.0.0.1"


def test_settings_validate() -> None:
    with pytest.raises(ValueError, match="scale"):
        Settings(scale=0)
    with pytest.raises(ValueError, match="fault_mode"):
        Settings(fault_mode="explode")

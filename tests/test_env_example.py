"""`.env.example` documents every setting that the components read (and nothing they do not)."""

from __future__ import annotations

import re
from pathlib import Path

from data_api.settings import Settings as DataApiSettings
from serving.settings import env_names as serving_env_names
from tasks.core.settings import TaskSettings
from ui.settings import UiSettings

REPO = Path(__file__).resolve().parents[1]


def documented() -> set[str]:
    names = set()
    for line in (REPO / ".env.example").read_text().splitlines():
        match = re.match(r"^#?\s*([A-Z][A-Z0-9_]+)=", line)
        if match:
            names.add(match.group(1))
    return names


def test_every_task_setting_is_documented():
    expected = {name.upper() for name in TaskSettings.model_fields}
    assert expected - documented() == set()


def test_every_data_api_setting_is_documented():
    prefix = DataApiSettings.model_config.get("env_prefix", "")
    expected = {f"{prefix}{name}".upper() for name in DataApiSettings.model_fields}
    assert expected - documented() == set()


def test_every_serving_setting_is_documented():
    assert serving_env_names() - documented() == set()


def test_every_ui_setting_is_documented():
    expected = {name.upper() for name in UiSettings.model_fields}
    assert expected - documented() == set()


def test_nothing_documented_is_unknown():
    known = {n.upper() for n in TaskSettings.model_fields}
    prefix = DataApiSettings.model_config.get("env_prefix", "")
    known |= {f"{prefix}{n}".upper() for n in DataApiSettings.model_fields}
    known |= serving_env_names()
    known |= {n.upper() for n in UiSettings.model_fields}
    assert documented() - known == set()

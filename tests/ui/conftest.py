"""Fixtures of the UI tests: a real ledger, lake and registry telling the pipeline's story,
and a helper that runs one page of the real app (``ui/app.py``) with Streamlit's AppTest."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tasks.core.ledger import Ledger
from tasks.core.storage import open_store
from tests.support.processes import free_port
from tests.support.served_model import (
    ModelStack,
    ServedStack,
    ServingProcess,
)
from tests.ui.story import MODEL_NAME, build_live_story, build_story, register_versions

REPO = Path(__file__).resolve().parents[2]
APP = REPO / "ui" / "app.py"
PAGES = {
    "Predict": "app_pages/predict.py",
    "Models": "app_pages/models.py",
    "Pipeline": "app_pages/pipeline.py",
    "Monitoring": "app_pages/monitoring.py",
}
#: the variables the UI reads; each test sets every one, so a developer's .env changes nothing
UI_VARIABLES = (
    "UI_SERVING_URL", "UI_SERVING_TIMEOUT_SECONDS", "UI_CACHE_SECONDS", "LEDGER_URL",
    "STORAGE_URL", "S3_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
    "MLFLOW_TRACKING_URI", "MODEL_NAME", "UI_MLFLOW_URL",
)  # fmt: skip


def closed_port_url() -> str:
    """An http URL on 127.0.0.1 where nothing listens."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture(scope="session")
def story_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A SQLite ledger, a file lake and an MLflow registry (SQLite) holding the six batches,
    the leaderboard's scores and live traffic (``tests/ui/story.py``)."""
    root = tmp_path_factory.mktemp("ui-story")
    ledger_url = f"sqlite:///{root / 'ledger.db'}"
    lake = f"file://{root / 'lake'}"
    tracking_uri = f"sqlite:///{root / 'mlflow.db'}"
    ledger, store = Ledger.open(ledger_url), open_store(lake)
    build_live_story(ledger, store, build_story(ledger, store))
    ledger.engine.dispose()  # the last connection closed: SQLite folds its WAL into the file
    register_versions(tracking_uri)
    return {
        "LEDGER_URL": ledger_url,
        "STORAGE_URL": lake,
        "MLFLOW_TRACKING_URI": tracking_uri,
        "MODEL_NAME": MODEL_NAME,
        "UI_SERVING_URL": closed_port_url(),
        "UI_CACHE_SECONDS": "0",
    }


@dataclass(frozen=True)
class ServedUi:
    """A model trained and promoted by the real steps, served by the real service."""

    stack: ModelStack
    serving: ServingProcess

    @property
    def env(self) -> dict[str, str]:
        """What the UI reads: the stack's stores, and this serving."""
        return {**self.stack.env, "UI_SERVING_URL": self.serving.url, "UI_CACHE_SECONDS": "0"}


@pytest.fixture(scope="session")
def served_ui(served_stack: ServedStack, serving: ServingProcess) -> ServedUi:
    """The session's served model (tests/conftest.py): trained and promoted by the real steps,
    served by the real service, shared with the serving tests."""
    return ServedUi(served_stack.stack, serving)


RunPage = Callable[..., AppTest]


@pytest.fixture
def run_page(monkeypatch: pytest.MonkeyPatch) -> RunPage:
    """``run_page("Models", env)``: the app with ``env``, switched to that page and run."""

    def run(page: str, env: dict[str, str], timeout: float = 60) -> AppTest:
        for name in UI_VARIABLES:
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        app = AppTest.from_file(str(APP), default_timeout=timeout)
        app.run()
        if page != "Predict":
            app.switch_page(PAGES[page])
            app.run()
        return app

    return run


def element_types(app: AppTest) -> list[str]:
    """The type of every element the page shows (e.g. ``plotly_chart``, ``iframe``)."""
    return [node.type for node in app.main]


def texts(app: AppTest) -> str:
    """Every markdown, caption, error, warning and info text of the page, one per line."""
    parts: list[str] = []
    for kind in ("markdown", "caption", "error", "warning", "info", "title", "subheader"):
        parts.extend(str(element.value) for element in app.get(kind))
    return "\n".join(parts)

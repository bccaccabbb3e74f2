"""Settings of the Streamlit app: one object, read from the environment (or ``.env``).

The connections the app shares with the tasks (LEDGER_URL, STORAGE_URL, the S3 variables,
MLFLOW_TRACKING_URI, MODEL_NAME) come from :class:`tasks.core.settings.ConnectionSettings`, so
one ``.env`` (or one ConfigMap) configures both. Nothing happens at import: no client is opened.
"""

from __future__ import annotations

from pydantic import Field

from tasks.core.settings import ConnectionSettings


class UiSettings(ConnectionSettings):
    """Everything the UI reads from its environment: the connections, and its own knobs."""

    ui_serving_url: str = Field(
        "http://127.0.0.1:8000", description="base URL of the serving API (serving/)"
    )
    ui_serving_timeout_seconds: float = Field(
        5.0, gt=0, description="read timeout of a call to serving (connecting gives up after 1 s)"
    )
    ui_cache_seconds: float = Field(
        15.0, ge=0, description="how long the Models and Pipeline pages reuse what they read"
    )
    ui_mlflow_url: str | None = Field(
        None,
        description="the MLflow UI as a browser reaches it (the Models page links each version "
        "to its run there); unset: run ids without links",
    )

    def mlflow_run_url(self, run_id: str | None) -> str | None:
        """The run's page in the MLflow UI (its ``#/runs/<id>`` route), or None without
        UI_MLFLOW_URL or a run id."""
        if not self.ui_mlflow_url or not run_id:
            return None
        return f"{self.ui_mlflow_url.rstrip('/')}/#/runs/{run_id}"


def get_settings() -> UiSettings:
    """The settings as the environment says now (cheap; read on every page run)."""
    return UiSettings()

"""Settings of the Streamlit app: one object, read from the environment (or ``.env``).

The names the app shares with the tasks (LEDGER_URL, STORAGE_URL, the S3 variables,
MLFLOW_TRACKING_URI, MODEL_NAME) mean the same thing as in ``tasks/core/settings.py``, so one
``.env`` (or one ConfigMap) configures both. Nothing happens at import: no client is opened.
"""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class UiSettings(BaseSettings):
    """Everything the UI reads from its environment."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    ui_serving_url: str = Field(
        "http://127.0.0.1:8000", description="base URL of the serving API (serving/)"
    )
    ui_serving_timeout_seconds: float = Field(
        5.0, gt=0, description="read timeout of a call to serving (connecting gives up after 1 s)"
    )
    ui_cache_seconds: float = Field(
        15.0, ge=0, description="how long the Models and Pipeline pages reuse what they read"
    )

    # the same names and meanings as in tasks/core/settings.py
    ledger_url: str = Field("sqlite:///./var/ledger.db", description="SQLAlchemy URL")
    storage_url: str = Field(
        "file://./var/lake", description="file://<dir> or s3://<bucket>[/<prefix>]"
    )
    s3_endpoint_url: str | None = None
    aws_access_key_id: str | None = None
    aws_secret_access_key: SecretStr | None = None
    aws_region: str = "us-east-1"
    mlflow_tracking_uri: str = Field(
        "sqlite:///./var/mlflow.db", description="an MLflow server (http://...) or a local store"
    )
    model_name: str = "realtor-price"


def get_settings() -> UiSettings:
    """The settings as the environment says now (cheap; read on every page run)."""
    return UiSettings()

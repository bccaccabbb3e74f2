"""Settings, read from the environment (or ``.env``): the connections every component shares,
and the pipeline tasks' own.

:class:`ConnectionSettings` is the one home of the names the tasks, serving and the UI share
(the object store and its S3 credentials, the ledger, MLflow, the model's name): each
component's settings extend it, and read those names unprefixed whatever their own prefix, so
one ``.env`` (or one ConfigMap) configures them all. Nothing happens at import: no directory
is created, no client is opened. Call :func:`get_settings` where a value is needed; tests build
:class:`TaskSettings` directly.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_S3_SECRET = "change-me"  # noqa: S105 - a marker refused outside development, not a secret


def shared_field(name: str, default: Any, **kwargs: Any) -> Any:
    """A field read from its unprefixed variable in every component (``NAME`` or ``name``)."""
    return Field(default, validation_alias=AliasChoices(name.upper(), name), **kwargs)


class ConnectionSettings(BaseSettings):
    """What every component reads to reach the platform: the object store, the ledger, MLflow
    and the model's name. The names are unprefixed in every subclass (``SERVING_`` applies to
    serving's own knobs only)."""

    model_config = SettingsConfigDict(
        env_file=".env", extra="ignore", frozen=True, populate_by_name=True
    )

    environment: Literal["development", "production"] = shared_field(
        "environment", "development", description="production refuses default credentials"
    )
    storage_url: str = shared_field(
        "storage_url", "file://./var/lake", description="file://<dir> or s3://<bucket>[/<prefix>]"
    )
    s3_endpoint_url: str | None = shared_field(
        "s3_endpoint_url", None, description="e.g. http://127.0.0.1:8333 (SeaweedFS)"
    )
    aws_access_key_id: str | None = shared_field("aws_access_key_id", None)
    aws_secret_access_key: SecretStr | None = shared_field("aws_secret_access_key", None)
    aws_region: str = shared_field("aws_region", "us-east-1")
    s3_connect_timeout_seconds: float = shared_field("s3_connect_timeout_seconds", 5.0, gt=0)
    s3_read_timeout_seconds: float = shared_field("s3_read_timeout_seconds", 60.0, gt=0)
    s3_max_attempts: int = shared_field(
        "s3_max_attempts", 3, ge=1, description="boto3 attempts per call (standard mode)"
    )
    ledger_url: str = shared_field(
        "ledger_url", "sqlite:///./var/ledger.db", description="SQLAlchemy URL of the ledger"
    )
    mlflow_tracking_uri: str = shared_field(
        "mlflow_tracking_uri",
        "sqlite:///./var/mlflow.db",
        description="an MLflow server (http://...) or a local store",
    )
    model_name: str = shared_field("model_name", "realtor-price")

    @model_validator(mode="after")
    def _refuse_default_secrets(self) -> ConnectionSettings:
        refuse_default_s3_secret(self.environment, self.aws_secret_access_key)
        return self


class TaskSettings(ConnectionSettings):
    """Everything a task reads from its environment (a ConfigMap/Secret in the cluster)."""

    log_format: Literal["console", "json"] = "console"
    log_level: str = "INFO"

    # data API
    data_api_url: str = "http://127.0.0.1:8090"
    group_number: int = Field(1, ge=1, le=10)
    day: str = "Tuesday"
    fetch_timeout_seconds: float = Field(120.0, gt=0, description="per-request read timeout")
    fetch_connect_timeout_seconds: float = Field(5.0, gt=0)
    fetch_attempts: int = Field(5, ge=1, description="attempts before a transient failure is fatal")
    fetch_backoff_initial_seconds: float = Field(1.0, ge=0)
    fetch_backoff_max_seconds: float = Field(30.0, ge=0)
    fetch_persist_seconds: float = Field(
        60.0,
        ge=0,
        description="how long fetch keeps retrying to store a body it already received (object "
        "store or ledger down) before failing; the body stays in the raw zone and the next "
        "fetch records it",
    )
    fetch_oversize_factor: float = Field(
        5.0,
        gt=1,
        description="a body more than this many times the largest accepted so far for the group "
        "and day is an incident (the course's batches grow at most 2.4x from one to the next)",
    )

    # the ledger
    ledger_connect_timeout_seconds: int = Field(
        10, ge=1, description="PostgreSQL: seconds to connect before failing (connect_timeout)"
    )

    # MLflow and the model
    mlflow_artifact_location: str | None = Field(
        None,
        description="where a new experiment keeps artifacts (a folder or s3://...); unset: "
        "the server's default, or ./mlruns for a local store",
    )
    # MLflow's own client variables, read under their own names with our bounds as defaults:
    # MLflow's defaults (120 s per request, 7 retries with backoff) delay a failure by minutes
    mlflow_http_request_timeout: int = Field(
        30, ge=1, description="MLflow client: seconds per HTTP request"
    )
    mlflow_http_request_max_retries: int = Field(
        2, ge=0, description="MLflow client: retries of a failed HTTP request"
    )
    mlflow_http_request_backoff_factor: int = Field(
        1, ge=0, description="MLflow client: backoff factor between retries (seconds)"
    )
    random_seed: int = 42

    # validate (thresholds of the Great Expectations suite's outcome)
    validation_warn_bad_row_share: float = Field(
        0.01, ge=0, le=1, description="rows breaking row-level expectations above this: warn"
    )
    validation_max_bad_row_share: float = Field(
        0.10, ge=0, le=1, description="above this share of bad rows the batch is quarantined"
    )
    validation_max_duplicate_share: float = Field(0.05, ge=0, le=1)
    validation_min_rows: int = Field(1, ge=0, description="fewer rows than this: quarantine")

    # drift_check (the decision to train)
    drift_share_threshold: float = Field(
        0.3, ge=0, le=1, description="share of drifted columns that justifies training"
    )
    drift_target_threshold: float = Field(
        0.1, ge=0, description="Wasserstein distance (normed) of price that justifies training"
    )
    min_train_rows: int = Field(
        10_000, ge=1, description="a batch smaller than this never justifies training alone"
    )
    drift_sample_rows: int = Field(
        50_000, ge=100, description="rows sampled (seeded) from each side of the drift comparison"
    )
    drift_new_value_min_share: float = Field(
        0.01,
        ge=0,
        le=1,
        description="status/state values absent from the reference justify training when they "
        "cover at least this share of the batch's rows",
    )

    # monitor (live traffic against the production model's training data)
    monitor_settle_seconds: float = Field(
        30.0,
        ge=0,
        description="a window ends this long before the monitor runs: serving writes the "
        "inference log in batches, so a row logged just now may still be in an uncommitted "
        "transaction, with a lower id than rows already visible",
    )
    monitor_min_rows: int = Field(
        200,
        ge=2,
        description="fewer logged requests than this: the window is too_few_rows and its rows "
        "wait for the next window",
    )
    monitor_drift_share_threshold: float = Field(
        0.5, ge=0, le=1, description="share of drifted input features that makes a window drifted"
    )
    monitor_sample_rows: int = Field(
        50_000,
        ge=100,
        description="rows sampled (seeded) from each side before Evidently runs; the whole "
        "window is still counted for the value shares",
    )
    monitor_value_shift_min_share: float = Field(
        0.2,
        ge=0,
        le=1,
        description="a status/state value is named in the reasons when its share of live "
        "requests exceeds its share of the training data by at least this much",
    )

    # train
    train_window_batches: int = Field(0, ge=0, description="0: all curated batches so far")
    train_time_budget_seconds: float = Field(
        120.0, gt=0, description="ceiling of the hyperparameter search's wall clock"
    )
    train_max_trials: int = Field(20, ge=1)
    train_search_row_budget: int = Field(
        80_000,
        ge=1,
        description="the search runs this many rows' worth of trials: budget / fit rows trials "
        "(at least 3, at most TRAIN_MAX_TRIALS); pruned trials cost less",
    )
    train_max_rows: int = Field(400_000, ge=1000, description="subsample cap (memory bound)")
    holdout_share: float = Field(0.2, gt=0, lt=1)
    train_search_max_rows: int = Field(
        20_000,
        ge=100,
        description="rows the hyperparameter search fits on, and validates on (the final fit uses "
        "all)",
    )
    train_threads: int = Field(
        0,
        ge=0,
        description="OpenMP threads of training and scoring; 0 = decided per fit by "
        "tasks.core.threads.training_threads: one thread below 200,000 rows or when the machine is "
        "busy when the task starts (idle threads then sleep), else the CPU limit of the pod (the "
        "cgroup's cpu.max, else the CPUs the process may run on)",
    )

    # promote
    promotion_min_mae_improvement: float = Field(0.03, ge=0, description="relative, 0.03 = 3%")
    promotion_max_rmse_regression: float = Field(0.01, ge=0, description="relative, 0.01 = 1%")
    promote_min_shadow_requests: int = Field(
        0,
        ge=0,
        description="live requests serving's shadow must have scored with the challenger "
        "against the champion before promote may move the alias; 0: not required",
    )

    # XCom contract of the KubernetesPodOperator; the local runtime points it elsewhere
    xcom_return_path: Path = Path("/airflow/xcom/return.json")


def refuse_default_s3_secret(environment: str, secret: SecretStr | None) -> None:
    """In production, the development default S3 secret is an error, not a fallback."""
    if (
        environment == "production"
        and secret is not None
        and secret.get_secret_value() == DEFAULT_S3_SECRET
    ):
        raise ValueError(
            "AWS_SECRET_ACCESS_KEY is the development default; set a generated secret "
            "(see cluster/secrets/create-secrets.sh) when ENVIRONMENT=production"
        )


def client_limits_env(settings: TaskSettings) -> dict[str, str]:
    """The environment variables that bound the time MLflow's client takes to fail (set by
    :func:`tasks.core.cli.run_task` before a task runs, so every MLflow call is bounded)."""
    return {
        "MLFLOW_HTTP_REQUEST_TIMEOUT": str(settings.mlflow_http_request_timeout),
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(settings.mlflow_http_request_max_retries),
        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": str(settings.mlflow_http_request_backoff_factor),
    }


@lru_cache(maxsize=1)
def get_settings() -> TaskSettings:
    """The process-wide settings, read once from the environment."""
    return TaskSettings()

"""Settings of the inference service: one object, read from the environment (or ``.env``).

The connections it shares with the pipeline (``MLFLOW_TRACKING_URI``, ``MODEL_NAME``,
``LEDGER_URL``, ``STORAGE_URL``, the S3 endpoint and credentials) come from
:class:`tasks.core.settings.ConnectionSettings`, read without a prefix, so one ConfigMap serves
both; the service's own knobs carry the prefix ``SERVING_``. Nothing happens at import: no client is opened, no folder created.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import SettingsConfigDict

from tasks.core.registry import CHALLENGER_ALIAS
from tasks.core.settings import ConnectionSettings, shared_field

#: Settings read without the SERVING_ prefix (the connections, shared with the pipeline).
SHARED_NAMES: tuple[str, ...] = (*ConnectionSettings.model_fields, "model_alias")


#: a generous size of one JSON record: ~200 bytes typically; 4 text fields of 128 characters,
#: each \uXXXX-escaped, are ~3 KB
BYTES_PER_RECORD = 4096


class ServingSettings(ConnectionSettings):
    """Everything the inference service reads from its environment."""

    model_config = SettingsConfigDict(env_prefix="SERVING_")

    # --- shared with the pipeline (no prefix): ConnectionSettings, and the alias served ---
    model_alias: str = shared_field(
        "model_alias", "production", description="the registry alias whose version is served"
    )

    # --- the service's own (prefix SERVING_) ---
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    log_format: Literal["console", "json"] = "console"
    log_level: str = "INFO"
    admin_token: SecretStr | None = Field(
        None, description="Bearer token of POST /admin/reload; unset: admin endpoints answer 403"
    )

    # model lifecycle
    poll_interval_seconds: float = Field(
        10.0, gt=0, description="how often the registry alias is checked"
    )
    load_retry_seconds: float = Field(
        60.0, ge=0, description="a version that failed to load is tried again after this long"
    )
    mlflow_timeout_seconds: int = Field(
        5, ge=1, description="per-request timeout of MLflow calls (registry polls, downloads)"
    )
    mlflow_max_retries: int = Field(
        1, ge=0, description="MLflow client retries per call (its default, 7, takes minutes)"
    )
    prepare_in_worker: bool = Field(
        True,
        description="load, compile and check each version in one kept worker process (spawned "
        "for the first version, reused for the next), off the request path; false: in the "
        "serving process (requests wait for each load)",
    )
    prepare_dir: str | None = Field(
        None,
        description="where a worker leaves the prepared arrays for serving to map; unset: "
        "/dev/shm (tmpfs), else the temp directory",
    )
    prepare_timeout_seconds: float = Field(
        600.0, gt=0, description="a preparation worker still busy after this long is killed"
    )
    prepare_duty_cycle: float = Field(
        1.0,
        gt=0,
        le=1,
        description="share of wall time the preparation worker may run: below 1 it is stopped "
        "and continued (SIGSTOP/SIGCONT) in 100 ms periods, so a version takes longer to "
        "prepare and takes that much less from the requests meanwhile",
    )
    prepare_nice: int = Field(
        10,
        ge=0,
        le=19,
        description="the preparation worker's niceness (CPU priority below serving)",
    )
    # shadow challenger (serving/shadow.py)
    shadow: bool = Field(
        False,
        description="score a sample of live requests with the challenger too, off the request "
        "path, and log both prices to the ledger (shadow_predictions); answers stay production's",
    )
    challenger_alias: str | None = Field(
        None,
        validate_default=True,
        description="also prepare the version carrying this alias (a shadow challenger) and hold "
        f"it beside the served one; unset: none ({CHALLENGER_ALIAS!r} with SERVING_SHADOW=true)",
    )
    shadow_sample: float = Field(
        1.0, ge=0, le=1, description="share of live requests the challenger scores (0..1)"
    )
    shadow_queue: int = Field(
        10_000, ge=1, description="rows waiting for the shadow scorer; beyond it rows are dropped"
    )
    shadow_batch_rows: int = Field(
        500, ge=1, description="most rows the challenger scores in one call (and one insert)"
    )

    # request path
    max_batch_rows: int = Field(1000, ge=1, description="most records one /predict accepts")
    max_body_bytes: int | None = Field(
        None,
        ge=1,
        description="largest request body accepted (413 before parsing); unset: "
        f"max_batch_rows x {BYTES_PER_RECORD:,} bytes",
    )
    micro_batch_max_rows: int = Field(
        256, ge=1, description="most rows of concurrent requests combined into one predict call"
    )
    micro_batch_max_wait_ms: float = Field(
        0.0,
        ge=0,
        le=100,
        description="how long the first request of a micro-batch waits for company; 0: only "
        "requests already queued join (batches still form whenever the model is busy)",
    )

    # inference log
    inference_log_enabled: bool = Field(
        True, description="log every prediction to the ledger and export it to the lake"
    )
    inference_log_queue_rows: int = Field(
        20_000, ge=1, description="rows buffered for the ledger writer; beyond it rows are dropped"
    )
    inference_log_batch_rows: int = Field(
        500, ge=1, description="most rows one ledger insert writes"
    )
    inference_log_flush_seconds: float = Field(
        1.0, gt=0, description="longest a logged row waits before it is written"
    )
    inference_log_db_timeout_seconds: float = Field(
        5.0, gt=0, description="connect and statement timeout of the ledger writer"
    )
    inference_export_interval_seconds: float = Field(
        60.0, gt=0, description="how often logged rows are exported to raw/inference/ as Parquet"
    )
    inference_export_max_rows: int = Field(
        10_000, ge=1, description="most rows in one exported Parquet file"
    )

    @field_validator("challenger_alias")
    @classmethod
    def _shadow_needs_a_challenger(cls, alias: str | None, info: ValidationInfo) -> str | None:
        """SERVING_SHADOW=true shadows the alias train sets, unless another one is named."""
        if not alias and info.data.get("shadow"):
            return CHALLENGER_ALIAS
        return alias

    @property
    def body_limit(self) -> int:
        """The body cap in force: SERVING_MAX_BODY_BYTES, else scaled to the row limit."""
        return self.max_body_bytes or self.max_batch_rows * BYTES_PER_RECORD


def env_names() -> set[str]:
    """Every environment variable :class:`ServingSettings` reads (for .env.example's test)."""
    prefix = ServingSettings.model_config.get("env_prefix", "")
    return {
        name.upper() if name in SHARED_NAMES else f"{prefix}{name}".upper()
        for name in ServingSettings.model_fields
    }

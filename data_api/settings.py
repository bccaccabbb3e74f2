"""Settings of the data API simulator, from ``DATA_API_*`` environment variables.

Nothing happens at import. Build :class:`Settings` directly (tests) or let the CLI build it
(flags override the environment).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

FaultMode = Literal["none", "error500", "timeout", "malformed", "lost_answer"]
END_OF_DATA = "Ya se recolectó toda la información mínima necesaria"
END_OF_DATA_PLAIN = "Ya se recolectó toda la información minima necesaria"
INVALID_GROUP = "Número de grupo inválido"


class Settings(BaseSettings):
    """Everything the simulator reads from its environment."""

    model_config = SettingsConfigDict(env_prefix="DATA_API_", extra="ignore", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(8090, ge=0, le=65535)
    seed: int = Field(42, ge=0, description="same seed + group + day + batch = same bytes")
    scale: float = Field(1.0, gt=0, description="rows per batch = max(1, round(base * scale))")
    min_interval_seconds: float = Field(
        0.0, ge=0, description="a cursor advances at most once per interval (course: 300)"
    )
    window_mode: Literal["repeat", "resample"] = Field(
        "repeat",
        description="inside the minimum interval: the same bytes again (repeat), or a new "
        "random sample under the same batch_number (resample, as the course's time window)",
    )
    first_batch_number: int = Field(
        1, ge=0, le=1, description="the batch_number of the first batch (the course has used both)"
    )
    end_of_data_message: str = Field(
        END_OF_DATA, description="the detail of the 400 after the last batch"
    )
    invalid_group_status: int = Field(
        422,
        description="422 (validation error) or 400 'Número de grupo inválido' (the course)",
    )

    restart_answer: Literal["object", "ok_list"] = Field(
        "object", description='what /restart_data_generation answers: an object or ["ok"]'
    )
    cache_batches: int = Field(2, ge=0, description="encoded batches kept in memory (LRU)")

    fault_mode: FaultMode = "none"
    fault_rate: float = Field(0.0, ge=0, le=1, description="share of /data requests that fail")
    fault_first_n: int = Field(0, ge=0, description="the first N /data requests fail")
    fault_timeout_seconds: float = Field(30.0, ge=0, description="sleep of a 'timeout' fault")

    log_level: str = "INFO"
    log_format: Literal["console", "json"] = "console"

    @field_validator("invalid_group_status")
    @classmethod
    def _400_or_422(cls, value: int) -> int:
        if value not in (400, 422):
            raise ValueError("must be 400 (the course) or 422 (FastAPI's validation error)")
        return value

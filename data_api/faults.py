"""Fault injection on ``/data`` for tests: HTTP 500, slow responses, truncated JSON, lost answers.

The first ``first_n`` requests after (re)configuration fail; after that each request fails
with probability ``rate``, drawn from an RNG seeded with the server's seed (reseeded on every
reconfiguration, so a run is repeatable). A faulted request never advances a cursor, except
``lost_answer``: the cursor moves on to the next batch, then the answer is dropped (HTTP 502),
as when a client times out after the server moved on - the batch is gone for the client.
"""

from __future__ import annotations

import threading

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from data_api.settings import FaultMode, Settings


class FaultConfig(BaseModel):
    """The body of ``PUT /admin/faults`` (fields left out take these defaults)."""

    model_config = ConfigDict(extra="forbid")

    mode: FaultMode = "none"
    rate: float = Field(0.0, ge=0, le=1)
    first_n: int = Field(0, ge=0)
    timeout_seconds: float = Field(30.0, ge=0)

    @classmethod
    def from_settings(cls, settings: Settings) -> FaultConfig:
        return cls(
            mode=settings.fault_mode,
            rate=settings.fault_rate,
            first_n=settings.fault_first_n,
            timeout_seconds=settings.fault_timeout_seconds,
        )


class FaultInjector:
    """Decides, request by request, whether ``/data`` fails and how."""

    def __init__(self, config: FaultConfig, seed: int) -> None:
        self._seed = seed
        self._lock = threading.Lock()
        self.configure(config)

    def configure(self, config: FaultConfig) -> None:
        """Replace the configuration; counters and the RNG start over."""
        with self._lock:
            self.config = config
            self.data_requests = 0
            self.faults_injected = 0
            self._rng = np.random.default_rng([self._seed, 0xFA17])

    def decide(self) -> FaultMode | None:
        """Count one ``/data`` request; the fault to inject, or None."""
        with self._lock:
            self.data_requests += 1
            config = self.config
            if config.mode == "none":
                return None
            if self.data_requests <= config.first_n or (
                config.rate > 0 and self._rng.random() < config.rate
            ):
                self.faults_injected += 1
                return config.mode
            return None

    def snapshot(self) -> dict[str, object]:
        with self._lock:
            return {
                **self.config.model_dump(),
                "data_requests": self.data_requests,
                "faults_injected": self.faults_injected,
            }

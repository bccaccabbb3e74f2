"""The monitor's latest window as Prometheus gauges, on serving's /metrics.

``tasks.monitor`` runs as a batch job (a pod per run): gauges set in it would die with it, and
the stack has no Pushgateway. The window is in the ledger, and serving is scraped all the
time, so serving exports it: a custom collector that reads
:func:`tasks.core.monitor_ledger.latest_window` at scrape time, cached for
:data:`CACHE_SECONDS` so several scrapers (or replicas' scrapes) do not each query the ledger.

- ``realtor_live_drift_share``: the share of input features drifted in the latest window;
- ``realtor_live_feature_drift{feature}``: each feature's drift score (a distance);
- ``realtor_live_feature_drift_threshold{feature}``: the score at which it counts as drifted;
- ``realtor_live_window_drifted``: 1 if the latest window is ``drifted``, else 0 (the alert);
- ``realtor_live_window_rows``: requests the window read;
- ``realtor_live_window_age_seconds``: now - the window's end (a stale monitor's alert);
- ``realtor_live_window_read_errors_total``: scrapes whose ledger read failed.

No window yet: only the error counter is exported (no alert fires on an absent series, and
the stale-monitor rule says so with ``absent()``). A ledger that fails is logged and counted,
and the scrape still answers: the service's own metrics must not depend on the ledger.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from tasks.core.logs import get_logger

log = get_logger("serving.monitor_metrics")

#: seconds a read of the latest window is reused
CACHE_SECONDS = 15.0


@dataclass(frozen=True)
class WindowView:
    """What the gauges show of one window (read once, detached from the session)."""

    decision: str
    drift_share: float | None
    rows: int
    window_end: datetime
    scores: dict[str, dict[str, Any]]


def read_latest(ledger_url: str, model_name: str) -> Callable[[], WindowView | None]:
    """A reader of the latest consumed window of ``model_name`` (opens the ledger lazily)."""
    from tasks.core.ledger import Ledger
    from tasks.core.monitor_ledger import as_utc, latest_window

    holder: dict[str, Ledger] = {}

    def read() -> WindowView | None:
        if "ledger" not in holder:
            holder["ledger"] = Ledger.open(ledger_url, upgrade=False, connect_timeout=5)
        row = latest_window(holder["ledger"], model_name)
        if row is None:
            return None
        return WindowView(
            row.decision,
            row.drift_share,
            int(row.rows),
            as_utc(row.window_end),
            dict(row.feature_scores or {}),
        )

    return read


class LiveWindowCollector(Collector):
    """Gauges of the latest monitor window, read at scrape time (cached)."""

    def __init__(
        self,
        read: Callable[[], WindowView | None],
        *,
        cache_seconds: float = CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read = read
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._cached: tuple[float, WindowView | None] | None = None
        self.errors = 0

    @classmethod
    def of(cls, ledger_url: str, model_name: str) -> LiveWindowCollector:
        return cls(read_latest(ledger_url, model_name))

    def _window(self) -> WindowView | None:
        with self._lock:
            now = self._clock()
            if self._cached is not None and now - self._cached[0] < self._cache_seconds:
                return self._cached[1]
            try:
                window = self._read()
            except Exception as exc:  # a scrape must answer; the failure is counted and logged
                self.errors += 1
                log.warning("monitor_metrics.read_failed", error=str(exc)[:300])
                window = None
            self._cached = (now, window)
            return window

    def describe(self) -> Iterator[Any]:
        """The families without reading the ledger (the registry calls this at register)."""
        yield CounterMetricFamily(
            "realtor_live_window_read_errors", "Scrapes whose read of the monitor window failed"
        )

    def collect(self) -> Iterator[Any]:
        window = self._window()
        yield CounterMetricFamily(
            "realtor_live_window_read_errors",
            "Scrapes whose read of the monitor window failed",
            value=self.errors,
        )
        if window is None:
            return
        yield GaugeMetricFamily(
            "realtor_live_drift_share",
            "Share of input features drifted in the latest monitor window",
            value=window.drift_share if window.drift_share is not None else float("nan"),
        )
        scores = GaugeMetricFamily(
            "realtor_live_feature_drift",
            "Drift score (distance) of each input feature in the latest monitor window",
            labels=["feature"],
        )
        thresholds = GaugeMetricFamily(
            "realtor_live_feature_drift_threshold",
            "Score at which a feature counts as drifted",
            labels=["feature"],
        )
        for feature, score in sorted(window.scores.items()):
            if score.get("score") is not None:
                scores.add_metric([feature], float(score["score"]))
            if score.get("threshold") is not None:
                thresholds.add_metric([feature], float(score["threshold"]))
        yield scores
        yield thresholds
        yield GaugeMetricFamily(
            "realtor_live_window_drifted",
            "1 if the latest monitor window is drifted, else 0",
            value=1.0 if window.decision == "drifted" else 0.0,
        )
        yield GaugeMetricFamily(
            "realtor_live_window_rows", "Requests the latest monitor window read", value=window.rows
        )
        yield GaugeMetricFamily(
            "realtor_live_window_age_seconds",
            "Seconds since the end of the latest monitor window",
            value=(datetime.now(UTC) - window.window_end).total_seconds(),
        )

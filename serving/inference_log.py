"""The inference log: every prediction goes to the ledger's ``inference_log`` table.

Never on the request path: the predict worker offers rows to a bounded in-memory buffer
(:class:`RowBuffer`, O(1) per row, never blocks) and one writer thread inserts them in batches.
When the buffer is full (the writer is behind or the ledger is down) new rows are dropped; when
an insert fails its rows are dropped too. Either way the loss is counted
(``realtor_inference_log_rows_dropped_total{reason}``) and logged, and predictions go on. The
writer's connections have bounded connect and statement timeouts, so nothing hangs.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import deque
from collections.abc import Iterable
from typing import Any

from sqlalchemy import create_engine, insert
from sqlalchemy.engine import Engine, make_url

from serving.errors import describe
from serving.metrics import ServingMetrics
from tasks.core.ledger import InferenceLog, migrate
from tasks.core.logs import get_logger

log = get_logger("serving.inference_log")

#: Seconds between two log lines about dropped rows (the metric counts every row).
DROP_LOG_INTERVAL = 10.0


def make_engine(url: str, timeout_seconds: float) -> Engine:
    """An engine whose connects and statements give up after ``timeout_seconds``."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    connect_args: dict[str, Any] = {}
    if backend == "postgresql":
        millis = int(timeout_seconds * 1000)
        connect_args = {
            "connect_timeout": max(1, round(timeout_seconds)),
            "options": f"-c statement_timeout={millis} -c lock_timeout={millis}",
            "tcp_user_timeout": millis,
        }
    elif backend == "sqlite":
        connect_args = {"timeout": timeout_seconds}
        if parsed.database not in (None, "", ":memory:"):
            from pathlib import Path

            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    return create_engine(
        url, pool_pre_ping=True, pool_timeout=timeout_seconds, connect_args=connect_args
    )


def log_rows(
    model_name: str,
    model_version: str,
    request_id: str,
    records: Iterable[dict[str, Any]],
    prices: Iterable[float],
    at: dt.datetime,
) -> list[dict[str, Any]]:
    """Rows of ``inference_log`` for one request's predictions."""
    return [
        {
            "request_id": request_id,
            "row_index": index,
            "model_name": model_name,
            "model_version": model_version,
            "predicted_at": at,
            "price": float(price),
            "features": {
                k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in record.items()
            },
        }
        for index, (record, price) in enumerate(zip(records, prices, strict=True))
    ]


class RowBuffer:
    """A bounded FIFO of rows between the predict worker and the writer thread."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._rows: deque[dict[str, Any]] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._wanted = 1  # rows the waiting taker asked for: fewer do not wake it

    def __len__(self) -> int:
        return len(self._rows)

    def offer(self, rows: list[dict[str, Any]]) -> int:
        """Add what fits; the number of rows that did not (dropped). Never blocks for long."""
        with self._cond:
            room = max(0, self.capacity - len(self._rows))
            self._rows.extend(rows[:room])
            if len(self._rows) >= self._wanted:  # else the taker's timeout collects them
                self._cond.notify()
            return max(0, len(rows) - room)

    def take(self, max_rows: int, wait_seconds: float) -> list[dict[str, Any]]:
        """Up to ``max_rows`` rows, waiting at most ``wait_seconds`` for that many."""
        with self._cond:
            self._wanted = max(1, max_rows)
            self._cond.wait_for(lambda: len(self._rows) >= max_rows or self._closed, wait_seconds)
            self._wanted = 1
            count = min(max_rows, len(self._rows))
            return [self._rows.popleft() for _ in range(count)]

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


class InferenceLogWriter:
    """The writer thread: buffer -> ``inference_log`` in batches; losses counted, never raised."""

    def __init__(
        self,
        ledger_url: str,
        metrics: ServingMetrics,
        *,
        capacity: int,
        batch_rows: int,
        flush_seconds: float,
        timeout_seconds: float,
    ) -> None:
        self.ledger_url = ledger_url
        self.metrics = metrics
        self.buffer = RowBuffer(capacity)
        self.batch_rows = batch_rows
        self.flush_seconds = flush_seconds
        self.timeout_seconds = timeout_seconds
        self.engine: Engine | None = None
        self.migrated = False
        self.written = 0
        self.dropped: dict[str, int] = {"queue_full": 0, "db_error": 0}
        self.last_error: str | None = None
        self._unreported: dict[str, int] = {"queue_full": 0, "db_error": 0}
        self._last_drop_log = 0.0
        self._drop_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.engine = make_engine(self.ledger_url, self.timeout_seconds)
        self._thread = threading.Thread(target=self._run, name="inference-log", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Write what is buffered (within ``timeout``), then stop."""
        self._stop.set()
        self.buffer.close()
        if self._thread is not None:
            self._thread.join(timeout)
        if self.engine is not None:
            self.engine.dispose()

    def offer(self, rows: list[dict[str, Any]]) -> None:
        """Queue rows for the ledger (called on the predict worker; never blocks)."""
        dropped = self.buffer.offer(rows)
        if dropped:
            self._drop("queue_full", dropped, None)
        self.metrics.inference_queue.set(len(self.buffer))

    def status(self) -> dict[str, Any]:
        return {
            "queued": len(self.buffer),
            "written": self.written,
            "dropped": dict(self.dropped),
            "last_error": self.last_error,
        }

    def _drop(self, reason: str, count: int, error: str | None) -> None:
        self.metrics.inference_dropped.labels(reason).inc(count)
        with self._drop_lock:
            self.dropped[reason] += count
            self._unreported[reason] += count
            now = time.monotonic()
            if now - self._last_drop_log < DROP_LOG_INTERVAL:
                return
            self._last_drop_log = now
            unreported, self._unreported = self._unreported, {"queue_full": 0, "db_error": 0}
        log.warning(
            "inference_log.rows_dropped",
            dropped_since_last_report=unreported,
            dropped_total=dict(self.dropped),
            error=error or self.last_error,
            consequence="predictions still served; these rows are missing from the inference log",
        )

    def _run(self) -> None:
        while True:
            stopping = self._stop.is_set()
            rows = self.buffer.take(self.batch_rows, 0.0 if stopping else self.flush_seconds)
            self.metrics.inference_queue.set(len(self.buffer))
            if rows:
                self._write(rows)
            elif stopping:
                return

    def _write(self, rows: list[dict[str, Any]]) -> None:
        assert self.engine is not None
        try:
            if not self.migrated:
                migrate(self.engine)
                self.migrated = True
            with self.engine.begin() as connection:
                connection.execute(insert(InferenceLog.__table__), rows)
        except Exception as exc:
            if self.last_error is None:
                log.error("inference_log.ledger_unreachable", error=describe(exc))
            self.last_error = describe(exc)
            self._drop("db_error", len(rows), self.last_error)
            if not self._stop.is_set():
                self._stop.wait(min(self.flush_seconds, 1.0))  # do not spin on a dead ledger
            return
        if self.last_error is not None:
            log.info("inference_log.ledger_recovered")
            self.last_error = None
        self.written += len(rows)
        self.metrics.inference_logged.inc(len(rows))

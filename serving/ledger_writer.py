"""Rows written to one ledger table in batches by a thread of their own, never on the request path.

The inference log (:mod:`serving.inference_log`) and the shadow (:mod:`serving.shadow`) both
work this way, through :class:`LedgerWriter`:

- the predict worker offers rows to a bounded in-memory buffer (:class:`RowBuffer`: one lock,
  O(1) per row, never blocks); when it is full the new rows are dropped (``queue_full``);
- one thread takes them in batches (``batch_rows``, or what came within ``flush_seconds``),
  may turn them into other rows first (:meth:`LedgerWriter.handle`: the shadow scores them) and
  inserts them; when the insert fails they are dropped (``db_error``) and the thread waits a
  little rather than spin on a dead ledger;
- every loss is counted (a Prometheus counter by reason, and :attr:`LedgerWriter.dropped`) and
  logged at most every :data:`REPORT_INTERVAL` seconds; nothing is raised to the request path;
- the engine's connects and statements give up after ``timeout_seconds`` (:func:`make_engine`),
  so nothing hangs; :meth:`LedgerWriter.stop` writes what is buffered first.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client import Counter, Gauge
from sqlalchemy import Table, create_engine, insert
from sqlalchemy.engine import Engine, make_url

from serving.errors import describe
from tasks.core.ledger import migrate
from tasks.core.logs import get_logger

#: Seconds between two log lines about lost rows (the metrics count every row).
REPORT_INTERVAL = 10.0


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
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    return create_engine(
        url, pool_pre_ping=True, pool_timeout=timeout_seconds, connect_args=connect_args
    )


class RowBuffer:
    """A bounded FIFO of rows between the predict worker and a writer thread."""

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


class Reporter:
    """Says yes at most once every ``interval`` seconds (rate-limited log lines)."""

    def __init__(self, interval: float = REPORT_INTERVAL) -> None:
        self.interval = interval
        self._last = -interval
        self._lock = threading.Lock()

    def due(self) -> bool:
        with self._lock:
            now = time.monotonic()
            if now - self._last < self.interval:
                return False
            self._last = now
            return True


@dataclass(frozen=True)
class WriterSeries:
    """A writer's Prometheus series: rows waiting, rows written, rows lost by reason."""

    queue: Gauge
    written: Counter
    dropped: Counter  # labelled by reason


class LedgerWriter:
    """A buffer and one thread writing its rows to ``table`` in batches; losses counted.

    ``name`` names the thread and prefixes the log events (``<name>.rows_dropped``,
    ``<name>.ledger_unreachable``, ``<name>.ledger_recovered``, ``<name>.crashed``);
    ``consequence`` says in those lines what a lost row means.
    """

    def __init__(
        self,
        name: str,
        table: Table,
        ledger_url: str,
        series: WriterSeries,
        *,
        capacity: int,
        batch_rows: int,
        flush_seconds: float,
        timeout_seconds: float,
        reasons: tuple[str, ...] = ("queue_full", "db_error"),
        consequence: str = "",
    ) -> None:
        self.name = name
        self.table = table
        self.ledger_url = ledger_url
        self.series = series
        self.buffer = RowBuffer(capacity)
        self.batch_rows = batch_rows
        self.flush_seconds = flush_seconds
        self.timeout_seconds = timeout_seconds
        self.consequence = consequence
        self.log = get_logger(f"serving.{name}")
        self.engine: Engine | None = None
        self.migrated = False
        self.written = 0
        self.dropped: dict[str, int] = dict.fromkeys(reasons, 0)
        self.last_error: str | None = None  # the ledger's, cleared once a write succeeds
        self._unreported: dict[str, int] = dict.fromkeys(reasons, 0)
        self._count_lock = threading.Lock()
        self._reporter = Reporter()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        for reason in reasons:
            series.dropped.labels(reason)

    # --- lifecycle ---
    def start(self) -> None:
        self.engine = make_engine(self.ledger_url, self.timeout_seconds)
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Write what is buffered (within ``timeout``), then stop."""
        self._stop.set()
        self.buffer.close()
        if self._thread is not None:
            self._thread.join(timeout)
        if self.engine is not None:
            self.engine.dispose()

    # --- the predict worker's side: never blocks ---
    def queue(self, rows: list[dict[str, Any]]) -> None:
        """Buffer rows for the thread; what does not fit is dropped and counted."""
        if rows:
            dropped = self.buffer.offer(rows)
            if dropped:
                self.lost("queue_full", dropped, f"the {self.name} writer is behind")
        self.series.queue.set(len(self.buffer))

    # --- the thread ---
    def handle(self, rows: list[dict[str, Any]]) -> None:
        """What the thread does with a batch taken from the buffer: write it (by default)."""
        self.write(rows)

    def _run(self) -> None:
        while True:
            stopping = self._stop.is_set()
            rows = self.buffer.take(self.batch_rows, 0.0 if stopping else self.flush_seconds)
            self.series.queue.set(len(self.buffer))
            if rows:
                try:
                    self.handle(rows)
                except Exception as exc:  # never let the thread die; these rows are lost
                    self.log.exception(f"{self.name}.crashed", error=describe(exc))
                    self.lost("db_error", len(rows), describe(exc))
            elif stopping:
                return

    def write(self, rows: list[dict[str, Any]]) -> None:
        """Insert ``rows`` into the table; on failure they are counted lost, never raised."""
        assert self.engine is not None
        try:
            if not self.migrated:
                migrate(self.engine)
                self.migrated = True
            with self.engine.begin() as connection:
                connection.execute(insert(self.table), rows)
        except Exception as exc:
            if self.last_error is None:
                self.log.error(f"{self.name}.ledger_unreachable", error=describe(exc))
            self.last_error = describe(exc)
            self.lost("db_error", len(rows), self.last_error)
            if not self._stop.is_set():
                self._stop.wait(min(self.flush_seconds, 1.0))  # do not spin on a dead ledger
            return
        if self.last_error is not None:
            self.log.info(f"{self.name}.ledger_recovered")
            self.last_error = None
        self.written += len(rows)
        self.series.written.inc(len(rows))

    # --- losses: counted always, logged at most every REPORT_INTERVAL ---
    def lost(self, reason: str, count: int, error: str | None) -> None:
        self.series.dropped.labels(reason).inc(count)
        with self._count_lock:
            self.dropped[reason] += count
            self._unreported[reason] += count
            if not self._reporter.due():
                return
            unreported = self._unreported
            self._unreported = dict.fromkeys(unreported, 0)
            total = dict(self.dropped)
        self.log.warning(
            f"{self.name}.rows_dropped",
            dropped_since_last_report={k: v for k, v in unreported.items() if v},
            dropped_total=total,
            error=error or self.last_error,
            consequence=self.consequence,
        )

"""Export the inference log to the lake: ``raw/inference/date=YYYY-MM-DD/log-<ids>.parquet``.

An exporter thread runs :func:`export_pending` every ``inference_export_interval_seconds``:
it claims unexported rows (one transaction sets their ``export_key``; if another replica
claimed any of them first, the claim is rolled back and retried later), writes them as one
Parquet object per day with one atomic put, then stamps ``exported_at``. A claim whose put
failed is written again, with exactly the same rows, on the next run; so every row lands in
exactly one object, once. The features become typed columns (the canonical schema), so drift
of live traffic can be measured with the same code as a batch's.

The export itself runs in a kept helper process (:mod:`serving.processes`, niceness
:data:`EXPORT_NICE`), not on serving's interpreter: at 2,000 requests a second a minute's rows
(about 130,000) took 4-6 s of CPU to read, decode and write, nearly all of it holding the
interpreter lock among the requests, which doubled the p99 of every minute it ran in
(``bench/README.md``). The thread here only asks and relays the answer (metrics, ``/model``'s
``export``). A helper that dies or hangs (``EXPORT_TIMEOUT_SECONDS``) is replaced on the next
run; its claimed rows are written again then, so nothing is lost.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import threading
import time
from collections import defaultdict
from typing import Any

import pyarrow as pa
from sqlalchemy import Select, select, update
from sqlalchemy.engine import Engine

from serving.errors import describe
from serving.ledger_writer import make_engine
from serving.metrics import ServingMetrics
from serving.processes import death, lower_priority, spawn
from serving.settings import ServingSettings
from tasks.core import lake
from tasks.core.ledger import InferenceLog
from tasks.core.logs import configure_logging, get_logger
from tasks.core.model import FEATURES
from tasks.core.schema import CANONICAL_SCHEMA
from tasks.core.storage import ObjectStore, open_store

log = get_logger("serving.inference_export")

TABLE = InferenceLog.__table__
#: The columns of an exported file: the prediction, then the features in canonical types.
EXPORT_SCHEMA = pa.schema(
    [
        pa.field("request_id", pa.string()),
        pa.field("row_index", pa.int32()),
        pa.field("model_name", pa.string()),
        pa.field("model_version", pa.string()),
        pa.field("predicted_at", pa.timestamp("us", tz="UTC")),
        pa.field("price", pa.float64()),
        *(CANONICAL_SCHEMA.field(name) for name in FEATURES),
    ]
)


#: The helper's niceness: below serving's, so a request never waits for an export's CPU.
EXPORT_NICE = 10
#: An export run still going after this long is stopped (the helper is killed and replaced).
EXPORT_TIMEOUT_SECONDS = 300.0


class ClaimContendedError(RuntimeError):
    """Another exporter claimed some of the rows first; try again on the next run."""


def _utc(value: dt.datetime) -> dt.datetime:
    """SQLite hands back naive datetimes: they are UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def export_table(rows: list[Any]) -> pa.Table:
    """The Parquet table of ``inference_log`` rows (ordered as given)."""
    columns: dict[str, list[Any]] = {name: [] for name in EXPORT_SCHEMA.names}
    for row in rows:
        columns["request_id"].append(row.request_id)
        columns["row_index"].append(row.row_index)
        columns["model_name"].append(row.model_name)
        columns["model_version"].append(row.model_version)
        columns["predicted_at"].append(_utc(row.predicted_at))
        columns["price"].append(row.price)
        features = row.features or {}
        for name in FEATURES:
            value = features.get(name)
            if name == "prev_sold_date" and isinstance(value, str):
                value = dt.date.fromisoformat(value)
            columns[name].append(value)
    return pa.table(columns, schema=EXPORT_SCHEMA)


def _write(engine: Engine, store: ObjectStore, key: str) -> int:
    """Put the rows claimed under ``key`` as one Parquet object, then mark them exported."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(TABLE).where(TABLE.c.export_key == key).order_by(TABLE.c.id)
        ).all()
    if not rows:
        return 0
    store.put_bytes(key, lake.to_parquet(export_table(rows)), content_type=lake.PARQUET)
    with engine.begin() as connection:
        connection.execute(
            update(TABLE)
            .where(TABLE.c.export_key == key, TABLE.c.exported_at.is_(None))
            .values(exported_at=dt.datetime.now(dt.UTC))
        )
    return len(rows)


def _claim(engine: Engine, key: str, ids: list[int]) -> None:
    with engine.begin() as connection:
        claimed = connection.execute(
            update(TABLE)
            .where(TABLE.c.id.in_(ids), TABLE.c.export_key.is_(None))
            .values(export_key=key)
        ).rowcount
        if claimed != len(ids):
            raise ClaimContendedError(f"claimed {claimed} of {len(ids)} rows for {key}")


def unfinished_claims() -> Select[tuple[str | None]]:
    """Keys claimed whose object was never written (``ix_inference_log_unexported``)."""
    return (
        select(TABLE.c.export_key)
        .where(TABLE.c.exported_at.is_(None), TABLE.c.export_key.is_not(None))
        .distinct()
    )


def export_pending(engine: Engine, store: ObjectStore, max_rows: int) -> list[tuple[str, int]]:
    """Export every row not exported yet (claims left over first): (key, rows) written."""
    written: list[tuple[str, int]] = []
    with engine.connect() as connection:
        leftover = connection.execute(unfinished_claims()).scalars().all()
    for key in leftover:
        if rows := _write(engine, store, key):
            written.append((key, rows))
    while True:
        with engine.connect() as connection:
            pending = connection.execute(
                select(TABLE.c.id, TABLE.c.predicted_at)
                .where(TABLE.c.export_key.is_(None))
                .order_by(TABLE.c.id)
                .limit(max_rows)
            ).all()
        if not pending:
            return written
        by_day: dict[str, list[int]] = defaultdict(list)
        for row_id, predicted_at in pending:
            by_day[_utc(predicted_at).date().isoformat()].append(row_id)
        for day, ids in sorted(by_day.items()):
            key = lake.inference_key(day, ids[0], ids[-1])
            _claim(engine, key, ids)
            written.append((key, _write(engine, store, key)))
        if len(pending) < max_rows:
            return written


def _serve(connection: Any, settings: ServingSettings) -> None:
    """The helper process: one :func:`export_pending` run per request, until serving's end closes.

    Each answer is ``("done", [(key, rows), ...])``, ``("contended", detail)`` or
    ``("failed", detail)``.
    """
    lower_priority(EXPORT_NICE)
    configure_logging(settings.log_format, settings.log_level)
    engine = make_engine(settings.ledger_url, settings.inference_log_db_timeout_seconds)
    store: ObjectStore | None = None
    while True:
        try:
            connection.recv()
        except (EOFError, OSError):  # serving closed its end, or is gone
            break
        try:
            if store is None:
                store = open_store(settings.storage_url, settings)
            answer: tuple[Any, ...] = (
                "done",
                export_pending(engine, store, settings.inference_export_max_rows),
            )
        except ClaimContendedError as exc:
            answer = ("contended", str(exc))
        except Exception as exc:
            answer = ("failed", describe(exc))
        try:
            connection.send(answer)
        except OSError:  # serving is gone; the rows it did not hear of are marked exported
            break
    engine.dispose()
    os._exit(0)


class _HelperError(RuntimeError):
    """The helper process could not start, died, or hung: this run exported nothing."""


class InferenceExporter:
    """The exporter thread: one export every ``interval_seconds``, run by the helper process."""

    def __init__(self, writer: Any, settings: ServingSettings, metrics: ServingMetrics) -> None:
        self._writer = writer  # the ledger's table exists once the writer has migrated it
        self.settings = settings
        self.metrics = metrics
        self.interval_seconds = settings.inference_export_interval_seconds
        self.exported = 0
        self.last_export_at: dt.datetime | None = None
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._ask_lock = threading.Lock()  # one run at a time through the one pipe
        self._helper: tuple[Any, Any] | None = None  # (process, serving's end)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="inference-export", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Export once more (what the writer flushed), then stop, and the helper with it."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._ask_lock.acquire(timeout=timeout):
            try:
                self._drop_helper(kill=False)
            finally:
                self._ask_lock.release()
        elif (helper := self._helper) is not None:  # a run still going: its claim is redone
            with contextlib.suppress(ProcessLookupError, ValueError, AttributeError):
                helper[0].kill()

    def export_now(self) -> list[tuple[str, int]]:
        """One export run (the helper's), waited for; errors are counted and said."""
        writer = self._writer
        if writer.engine is None or not writer.migrated:
            return []
        try:
            answer = self._ask()
        except _HelperError as exc:
            answer = ("failed", str(exc))
        if answer[0] == "contended":
            log.info("inference_export.contended", detail=answer[1])
            return []
        if answer[0] == "failed":
            self.last_error = answer[1]
            self.metrics.inference_export_failures.inc()
            log.error("inference_export.failed", error=self.last_error)
            return []
        keys: list[tuple[str, int]] = answer[1]
        if keys:
            rows = sum(count for _, count in keys)
            self.exported += rows
            self.metrics.inference_exported.inc(rows)
            log.info("inference_export.written", rows=rows, keys=[key for key, _ in keys])
        self.last_error = None
        self.last_export_at = dt.datetime.now(dt.UTC)
        return keys

    def status(self) -> dict[str, Any]:
        return {
            "last_export_at": self.last_export_at.isoformat() if self.last_export_at else None,
            "last_error": self.last_error,
            "exported": self.exported,
            "interval_seconds": self.interval_seconds,
        }

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval_seconds)
            self._wake.clear()
            self.export_now()

    # --- the helper process ---
    def _ask(self) -> tuple[Any, ...]:
        with self._ask_lock:
            process, connection = self._live_helper()
            try:
                connection.send("export")
                deadline = time.monotonic() + EXPORT_TIMEOUT_SECONDS
                while not connection.poll(0.5):
                    if not process.is_alive():
                        raise _HelperError(
                            f"the export process died ({death(process.exitcode)}); its rows "
                            "stay in the ledger and are exported by a new one on the next run"
                        )
                    if time.monotonic() > deadline:
                        raise _HelperError(
                            f"an export run took over {EXPORT_TIMEOUT_SECONDS:g} s: its process "
                            "is killed; the rows stay in the ledger for the next run"
                        )
                answer: tuple[Any, ...] = connection.recv()
                return answer
            except (_HelperError, EOFError, OSError) as exc:
                self._drop_helper(kill=True)
                if isinstance(exc, _HelperError):
                    raise
                raise _HelperError(f"the export process went away: {describe(exc)}") from exc

    def _live_helper(self) -> tuple[Any, Any]:
        if self._helper is not None and self._helper[0].is_alive():
            return self._helper
        if self._helper is not None:
            gone = self._helper[0]
            log.warning(
                "inference_export.process_gone",
                pid=gone.pid,
                how=death(gone.exitcode),
                consequence="a new export process is started for this run",
            )
        self._drop_helper(kill=True)
        try:
            self._helper = spawn(_serve, (self.settings,), "inference-export")
        except Exception as exc:
            raise _HelperError(f"no export process could start: {describe(exc)}") from exc
        log.info("inference_export.process_started", pid=self._helper[0].pid)
        return self._helper

    def _drop_helper(self, *, kill: bool) -> None:
        """Forget the helper: closing serving's end lets an idle one leave by itself."""
        if self._helper is None:
            return
        process, connection = self._helper
        self._helper = None
        with contextlib.suppress(OSError):
            connection.close()
        if kill:
            with contextlib.suppress(ProcessLookupError, ValueError, AttributeError):
                process.kill()
        process.join(5)
        if process.is_alive():
            process.kill()
            process.join(5)

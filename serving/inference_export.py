"""Export the inference log to the lake: ``raw/inference/date=YYYY-MM-DD/log-<ids>.parquet``.

An exporter thread runs :func:`export_pending` every ``inference_export_interval_seconds``:
it claims unexported rows (one transaction sets their ``export_key``; if another replica
claimed any of them first, the claim is rolled back and retried later), writes them as one
Parquet object per day with one atomic put, then stamps ``exported_at``. A claim whose put
failed is written again, with exactly the same rows, on the next run; so every row lands in
exactly one object, once. The features become typed columns (the canonical schema), so drift
of live traffic can be measured with the same code as a batch's.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import defaultdict
from typing import Any

import pyarrow as pa
from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from serving.errors import describe
from serving.metrics import ServingMetrics
from tasks.core import lake
from tasks.core.ledger import InferenceLog
from tasks.core.logs import get_logger
from tasks.core.model import FEATURES
from tasks.core.schema import CANONICAL_SCHEMA
from tasks.core.storage import ObjectStore

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


def export_pending(engine: Engine, store: ObjectStore, max_rows: int) -> list[tuple[str, int]]:
    """Export every row not exported yet (claims left over first): (key, rows) written."""
    written: list[tuple[str, int]] = []
    with engine.connect() as connection:
        leftover = (
            connection.execute(
                select(TABLE.c.export_key)
                .where(TABLE.c.export_key.is_not(None), TABLE.c.exported_at.is_(None))
                .distinct()
            )
            .scalars()
            .all()
        )
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


class InferenceExporter:
    """The exporter thread: :func:`export_pending` every ``interval_seconds``."""

    def __init__(
        self,
        engine_source: Any,
        store_factory: Any,
        metrics: ServingMetrics,
        *,
        interval_seconds: float,
        max_rows: int,
    ) -> None:
        self._engine_source = engine_source  # the writer: shares its engine once it migrated
        self._store_factory = store_factory
        self._store: ObjectStore | None = None
        self.metrics = metrics
        self.interval_seconds = interval_seconds
        self.max_rows = max_rows
        self.exported = 0
        self.last_export_at: dt.datetime | None = None
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="inference-export", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Export once more (what the writer flushed), then stop."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def export_now(self) -> list[tuple[str, int]]:
        """One export run on the caller's thread (tests, shutdown); errors are counted."""
        writer = self._engine_source
        if writer.engine is None or not writer.migrated:
            return []
        try:
            if self._store is None:
                self._store = self._store_factory()
            keys = export_pending(writer.engine, self._store, self.max_rows)
        except ClaimContendedError as exc:
            log.info("inference_export.contended", detail=str(exc))
            return []
        except Exception as exc:
            self.last_error = describe(exc)
            self.metrics.inference_export_failures.inc()
            log.error("inference_export.failed", error=self.last_error)
            return []
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

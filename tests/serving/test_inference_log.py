"""The inference log's writer and exporter against real databases and a real lake.

Migration 0003 runs forward on an existing ledger; rows are written in batches; a full buffer
or a dead ledger drops rows, counts them and never blocks; the export claims rows once and a
claim whose upload failed is written again with exactly the same rows.
"""

from __future__ import annotations

import datetime as dt
import io
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from sqlalchemy import create_engine, insert, inspect, select, text

from serving.inference_export import _claim, export_pending
from serving.inference_log import InferenceLogWriter, log_rows
from serving.ledger_writer import make_engine
from serving.loader import WARMUP_RECORDS
from serving.metrics import ServingMetrics
from tasks.core.ledger import InferenceLog, Ledger, migrate
from tasks.core.storage import FileStore
from tests.support.postgres import ADMIN_URL, fresh_database
from tests.support.processes import free_port

NOW = dt.datetime(2026, 11, 28, 9, 30, tzinfo=dt.UTC)


def rows(count: int, request_id: str = "r", at: dt.datetime = NOW) -> list[dict]:
    records = [dict(WARMUP_RECORDS[i % len(WARMUP_RECORDS)]) for i in range(count)]
    return log_rows("m", "3", request_id, records, [100_000.0 + i for i in range(count)], at)


def upgrade_to(url: str, revision: str) -> None:
    engine = create_engine(url)
    migrate(engine, revision)
    engine.dispose()


def check_migration_forward(url: str) -> None:
    upgrade_to(url, "0002")
    ledger = Ledger(create_engine(url))
    assert "inference_log" not in inspect(ledger.engine).get_table_names()
    with ledger.engine.begin() as connection:  # a batch as 0002 stored it (today's model is newer)
        connection.execute(
            text(
                "INSERT INTO batches (id, group_number, day, batch_number, sha256, raw_key, rows,"
                " bytes, schema_problems, status, fetched_at) VALUES (1, 1, 'Tuesday', 1,"
                " :sha, 'k', 3, 10, '[]', 'raw', :at)"
            ),
            {"sha": "a" * 64, "at": dt.datetime.now(dt.UTC)},
        )
    migrate(ledger.engine)  # 0002 -> head
    assert "inference_log" in inspect(ledger.engine).get_table_names()
    assert ledger.get_batch(1).sha256 == "a" * 64
    with ledger.engine.begin() as connection:
        connection.execute(insert(InferenceLog.__table__), rows(2))
        assert connection.execute(select(InferenceLog.price)).scalars().all() == [
            100000.0,
            100001.0,
        ]
    migrate(ledger.engine)  # idempotent
    ledger.engine.dispose()


def test_migration_0003_runs_forward_on_an_existing_sqlite_ledger(tmp_path: Path):
    check_migration_forward(f"sqlite:///{tmp_path / 'ledger.db'}")


@pytest.mark.postgres
def test_migration_0003_runs_forward_on_an_existing_postgres_ledger(pg_url: str):
    check_migration_forward(pg_url)


def writer_for(url: str, metrics: ServingMetrics, **kw) -> InferenceLogWriter:
    values = {"capacity": 1000, "batch_rows": 50, "flush_seconds": 0.05, "timeout_seconds": 2.0}
    writer = InferenceLogWriter(url, metrics, **{**values, **kw})
    writer.start()
    return writer


def wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def dropped(metrics: ServingMetrics, reason: str) -> float:
    return (
        metrics.registry.get_sample_value(
            "realtor_inference_log_rows_dropped_total", {"reason": reason}
        )
        or 0.0
    )


def test_a_full_buffer_drops_and_counts_without_blocking(tmp_path: Path):
    metrics = ServingMetrics()
    writer = InferenceLogWriter(
        f"sqlite:///{tmp_path / 'l.db'}",
        metrics,
        capacity=10,
        batch_rows=5,
        flush_seconds=0.05,
        timeout_seconds=2.0,
    )  # not started: nothing drains the buffer
    started = time.perf_counter()
    writer.offer(rows(8))
    writer.offer(rows(8))
    assert time.perf_counter() - started < 0.05
    assert len(writer.buffer) == 10 and dropped(metrics, "queue_full") == 6
    assert writer.status()["dropped"] == {"queue_full": 6, "db_error": 0}


def test_nothing_listening_drops_and_counts_fast(tmp_path: Path):
    metrics = ServingMetrics()
    url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nothing"
    writer = writer_for(url, metrics)
    try:
        started = time.perf_counter()
        writer.offer(rows(30))
        assert time.perf_counter() - started < 0.05  # offering never waits for the database
        wait_for(lambda: dropped(metrics, "db_error") == 30, timeout=10)
        assert writer.status()["last_error"].startswith("OperationalError")
    finally:
        started = time.perf_counter()
        writer.stop()
        assert time.perf_counter() - started < 5


@pytest.mark.postgres
def test_a_ledger_dropped_mid_way_loses_rows_counted_and_nothing_hangs():
    metrics = ServingMetrics()
    with fresh_database("inference_down") as url:
        writer = writer_for(url, metrics)
        try:
            writer.offer(rows(20, "before"))
            wait_for(lambda: writer.written == 20)
            name = url.rsplit("/", 1)[1]
            admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
            admin.dispose()
            started = time.perf_counter()
            writer.offer(rows(15, "after"))
            wait_for(lambda: dropped(metrics, "db_error") == 15, timeout=15)
            assert time.perf_counter() - started < 10
            assert writer.written == 20
        finally:
            started = time.perf_counter()
            writer.stop()
            assert time.perf_counter() - started < 6


def test_export_claims_once_and_retries_a_failed_upload_with_the_same_rows(tmp_path: Path):
    engine = make_engine(f"sqlite:///{tmp_path / 'l.db'}", 2.0)
    migrate(engine)
    store = FileStore(tmp_path / "lake")
    yesterday = NOW - dt.timedelta(days=1)
    with engine.begin() as connection:
        connection.execute(insert(InferenceLog.__table__), rows(3, "old", yesterday))
        connection.execute(insert(InferenceLog.__table__), rows(4, "new", NOW))
    # an exporter claimed the first rows, then died before its upload
    _claim(engine, "raw/inference/date=2026-11-27/log-000000000001-000000000003.parquet", [1, 2, 3])
    with engine.begin() as connection:
        connection.execute(insert(InferenceLog.__table__), rows(2, "later", NOW))

    written = export_pending(engine, store, max_rows=100)
    assert written == [
        ("raw/inference/date=2026-11-27/log-000000000001-000000000003.parquet", 3),
        ("raw/inference/date=2026-11-28/log-000000000004-000000000009.parquet", 6),
    ]
    assert export_pending(engine, store, max_rows=100) == []
    keys = store.list_keys("raw/inference/")
    assert keys == [key for key, _ in written]
    old = pq.read_table(io.BytesIO(store.get_bytes(keys[0])))
    assert old["request_id"].to_pylist() == ["old"] * 3
    assert old["predicted_at"][0].as_py() == yesterday
    new = pq.read_table(io.BytesIO(store.get_bytes(keys[1])))
    assert new.num_rows == 6 and new["state"].to_pylist()[:3] == ["Texas", None, "Atlantis"]
    engine.dispose()


def test_export_splits_by_max_rows(tmp_path: Path):
    engine = make_engine(f"sqlite:///{tmp_path / 'l.db'}", 2.0)
    migrate(engine)
    with engine.begin() as connection:
        connection.execute(insert(InferenceLog.__table__), rows(5))
    written = export_pending(engine, FileStore(tmp_path / "lake"), max_rows=2)
    assert [count for _, count in written] == [2, 2, 1]
    engine.dispose()


def test_the_export_runs_in_a_helper_process_that_a_death_does_not_stop(tmp_path: Path):
    """The exporter's runs happen in a kept helper process, not on serving's interpreter; a
    helper killed between runs is replaced, and every row still lands in the lake once."""
    import os
    import signal

    from serving.inference_export import InferenceExporter
    from serving.settings import ServingSettings

    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    settings = ServingSettings(ledger_url=url, storage_url=(tmp_path / "lake").as_uri())
    metrics = ServingMetrics()
    writer = writer_for(url, metrics)
    writer.start()
    exporter = InferenceExporter(writer, settings, metrics)
    try:
        writer.offer(rows(3, "first"))
        wait_for(lambda: writer.written == 3)
        assert [count for _, count in exporter.export_now()] == [3]
        helper = exporter._helper[0]
        assert helper.pid != os.getpid() and helper.is_alive()
        os.kill(helper.pid, signal.SIGKILL)  # say, the OOM killer, between two runs
        helper.join(30)
        writer.offer(rows(2, "second"))
        wait_for(lambda: writer.written == 5)
        assert [count for _, count in exporter.export_now()] == [2]  # a new helper ran it
        assert exporter._helper[0].pid != helper.pid
        assert exporter.exported == 5 and exporter.last_error is None
        replacement = exporter._helper[0]
    finally:
        writer.stop()
        exporter.stop()
    replacement.join(30)
    assert replacement.exitcode == 0  # stop() let it leave by itself
    store = FileStore(tmp_path / "lake")
    exported = [pq.read_table(io.BytesIO(store.get_bytes(k))) for k in store.list_keys("raw/")]
    assert (
        sorted(r for t in exported for r in t["request_id"].to_pylist())
        == ["first"] * 3 + ["second"] * 2
    )


def test_unfinished_claims_are_found_without_walking_the_exported_rows(tmp_path: Path):
    """Migration 0007's index: each export run's first query reads only unexported rows."""
    from serving.inference_export import unfinished_claims

    engine = make_engine(f"sqlite:///{tmp_path / 'l.db'}", 2.0)
    migrate(engine)
    with engine.begin() as connection:
        connection.execute(insert(InferenceLog.__table__), rows(6))
    export_pending(engine, FileStore(tmp_path / "lake"), max_rows=2)  # three objects written
    with engine.begin() as connection:
        connection.execute(insert(InferenceLog.__table__), rows(1, "late"))
    _claim(engine, "raw/inference/date=2026-11-28/log-000000000007.parquet", [7])  # never put
    query = unfinished_claims().compile(engine, compile_kwargs={"literal_binds": True})
    with engine.connect() as connection:
        plan = " ".join(row[-1] for row in connection.execute(text(f"EXPLAIN QUERY PLAN {query}")))
        found = connection.execute(unfinished_claims()).scalars().all()
    assert "USING COVERING INDEX ix_inference_log_unexported" in plan or (
        "USING INDEX ix_inference_log_unexported" in plan
    ), plan
    assert found == ["raw/inference/date=2026-11-28/log-000000000007.parquet"]
    engine.dispose()

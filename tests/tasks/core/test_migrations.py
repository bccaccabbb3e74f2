"""Migrations run forward on a ledger that already holds data (SQLite and PostgreSQL).

A ledger is built at revision 0002 with what older code could leave behind: two drift
decisions and two trainings for one batch (check-then-insert races), a promotion pointing at
the second training, hidden ``_rows_*`` keys in ``trainings.metrics``. After ``upgrade head``
every batch keeps its id, gets a delivery, the duplicates are folded onto the oldest row
(references moved), the hidden keys are columns, and the database refuses a second row.
"""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from tasks.core.ledger import Ledger, make_ledger_engine, migrate
from tasks.core.lifecycle_ledger import find_drift_decision, find_training
from tasks.core.story import batch_summaries, model_history, read_story

NOW = datetime(2026, 11, 1, tzinfo=UTC)


def upgrade(url: str, revision: str) -> None:
    engine = make_ledger_engine(url)
    migrate(engine, revision)
    engine.dispose()


def seed_0002(url: str) -> None:
    engine = make_ledger_engine(url)
    with engine.begin() as conn:
        for number in (1, 2):
            conn.execute(
                text(
                    "INSERT INTO batches (id, group_number, day, batch_number, sha256, raw_key, "
                    "rows, bytes, schema_problems, status, fetched_at) VALUES (:id, 1, 'Tuesday', "
                    ":n, :sha, :key, 10, 100, '[]', 'curated', :at)"
                ),
                {
                    "id": number,
                    "n": number,
                    "sha": f"{number}" * 64,
                    "key": f"raw/{number}",
                    "at": NOW,
                },
            )
        conn.execute(
            text(
                "INSERT INTO api_cursors (group_number, day, last_batch_number, updated_at) "
                "VALUES (1, 'Tuesday', 2, :at)"
            ),
            {"at": NOW},
        )
        for row_id, batch_id in ((1, 1), (2, 1), (3, 2)):  # two decisions for batch 1
            conn.execute(
                text(
                    "INSERT INTO drift_decisions (id, batch_id, decision, reasons, details, "
                    "created_at) VALUES (:id, :b, 'train', '[\"r\"]', '{}', :at)"
                ),
                {"id": row_id, "b": batch_id, "at": NOW},
            )
        metrics = '{"mae": 5.0, "_rows_train": 8, "_rows_holdout": 2, "_holdout_share": 0.2}'
        for row_id, decision_id, version in ((1, 1, "1"), (2, 2, "2")):  # two for batch 1
            conn.execute(
                text(
                    "INSERT INTO trainings (id, batch_id, decision_id, mlflow_run_id, model_name, "
                    "model_version, training_batch_ids, metrics, reasons, created_at) VALUES "
                    "(:id, 1, :d, 'run', 'm', :v, '[1]', :metrics, '[]', :at)"
                ),
                {"id": row_id, "d": decision_id, "v": version, "metrics": metrics, "at": NOW},
            )
        conn.execute(
            text(
                "INSERT INTO promotions (id, batch_id, training_id, model_name, "
                "challenger_version, promoted, reasons, challenger_metrics, champion_metrics, "
                "created_at) VALUES (1, 1, 2, 'm', '2', true, '[]', '{}', '{}', :at)"
            ),
            {"at": NOW},
        )
    engine.dispose()


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_upgrade_runs_forward_on_a_ledger_with_data(request, backend):
    url = request.getfixturevalue("sqlite_url" if backend == "sqlite" else "pg_url")
    upgrade(url, "0002")
    seed_0002(url)
    ledger = Ledger.open(url)  # upgrade head

    batches = ledger.batches()
    assert [(b.id, b.batch_number, b.delivery, b.payload_key) for b in batches] == [
        (1, 1, 1, None),
        (2, 2, 1, None),
    ]
    assert [(d.batch_id, d.outcome, d.payload_key) for d in ledger.deliveries()] == [
        (1, "stored", "raw/1"),
        (2, "stored", "raw/2"),
    ]
    assert ledger.cursor(1, "Tuesday").next_batch_number == 3
    # the oldest row of each step stays; the promotion follows its training
    assert find_drift_decision(ledger, 1).id == 1
    training = find_training(ledger, 1)
    assert (training.id, training.decision_id) == (1, 1)
    assert (training.rows_train, training.rows_holdout, training.holdout_share) == (8, 2, 0.2)
    assert training.metrics == {"mae": 5.0}
    _, _, decision, story_training, promotion = read_story(ledger, 1)
    assert (decision.id, story_training.id, promotion.training_id) == (1, 1, 1)
    assert [s["model_version"] for s in batch_summaries(ledger)] == ["1", None]
    assert [h["model_version"] for h in model_history(ledger, "m")] == ["1"]
    # and from now on the database refuses a second row per batch
    for table in ("validations", "drift_decisions", "trainings", "promotions"):
        (index,) = [
            i for i in inspect(ledger.engine).get_indexes(table) if i["name"].endswith("batch_id")
        ]
        assert index["unique"]
    with pytest.raises(IntegrityError), ledger.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO drift_decisions (batch_id, decision, reasons, details, created_at) "
                "VALUES (2, 'skip', '[]', '{}', :at)"
            ),
            {"at": NOW},
        )
    ledger.engine.dispose()


#: a process that opens (and so migrates) the ledger at an agreed instant, and says "ok"
OPEN_AT = (
    "import sys, time; from tasks.core.ledger import Ledger; "
    "time.sleep(max(0.0, float(sys.argv[2]) - time.time())); Ledger.open(sys.argv[1]); print('ok')"
)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_processes_starting_together_on_a_new_ledger_all_migrate_it(request, backend):
    """Serving beside the first task, or two DAG runs, on a ledger nobody has migrated yet:
    each saw no alembic_version table and created it, and all but one failed."""
    url = request.getfixturevalue("sqlite_url" if backend == "sqlite" else "pg_url")
    start = str(time.time() + 6)  # after every interpreter has imported SQLAlchemy and Alembic
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", OPEN_AT, url, start],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outcomes = [process.communicate(timeout=120) for process in processes]
    assert [out.strip() for out, _ in outcomes] == ["ok"] * 4, [err for _, err in outcomes]
    engine = make_ledger_engine(url)
    with engine.connect() as conn:
        assert len(conn.execute(text("SELECT version_num FROM alembic_version")).all()) == 1
    engine.dispose()

"""The Monitoring page's aggregates (tasks.core.monitoring_reads) and the leaderboard's reads
(tasks.core.leaderboard), on PostgreSQL and on SQLite: the same numbers from both databases,
and from a recomputation in Python."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest

from tasks.core import leaderboard, monitoring_reads
from tasks.core.ledger import InferenceLog, Ledger, ShadowPrediction, Training, VersionScore
from tasks.core.storage import open_store
from tests.tasks.factories import make_rows, put_batch

START = dt.datetime(2026, 11, 21, 9, 0, tzinfo=dt.UTC)
#: (minutes after START, production price, challenger price)
PAIRS = [(m, 100_000.0 + 1_000 * m, (100_000.0 + 1_000 * m) * f)
         for m, f in zip(range(0, 150, 10), [1.0, 1.05, 1.2, 0.8, 1.11, 0.95, 1.3, 1.0,
                                              0.5, 1.02, 1.09, 0.9, 1.5, 1.01, 0.99], strict=True)]  # fmt: skip


def seed(ledger: Ledger) -> None:
    with ledger.session() as session:
        for minutes, production, challenger in PAIRS:
            at = START + dt.timedelta(minutes=minutes)
            session.add(
                InferenceLog(
                    request_id=f"r{minutes}", model_name="m", model_version="2", predicted_at=at,
                    price=production, features={},
                )
            )  # fmt: skip
            session.add(
                ShadowPrediction(
                    request_id=f"r{minutes}", model_name="m", production_version="2",
                    challenger_version="3", predicted_at=at, production_price=production,
                    challenger_price=challenger,
                )
            )  # fmt: skip
        session.add(  # another model's request: never counted
            InferenceLog(request_id="x", model_name="other", model_version="1",
                         predicted_at=START, price=1.0, features={})
        )  # fmt: skip


def check(ledger: Ledger) -> None:
    hours = monitoring_reads.requests_per_hour(ledger, "m")
    assert [row["requests"] for row in hours] == [6, 6, 3]  # 9:00-9:50, 10:00-10:50, 11:00-11:20
    assert hours[0]["mean_price"] == pytest.approx(np.mean([p for m, p, _ in PAIRS[:6]]))
    assert hours[2]["max_price"] == PAIRS[-1][1]
    [agreement] = monitoring_reads.shadow_agreement(ledger, "m")
    ratios = np.array([c / p for _, p, c in PAIRS])
    apart = np.abs(np.log10(ratios)) > math.log10(1.1)
    assert agreement["compared"] == len(PAIRS)
    assert agreement["share_apart"] == pytest.approx(apart.mean())
    assert agreement["median_abs_log_diff"] == pytest.approx(np.median(np.abs(np.log10(ratios))))
    per_hour = monitoring_reads.shadow_per_hour(ledger, "m")
    assert [row["compared"] for row in per_hour] == [6, 6, 3]
    assert per_hour[0]["share_apart"] == pytest.approx(apart[:6].mean())
    assert monitoring_reads.shadow_agreement(ledger, "other") == []
    assert monitoring_reads.requests_per_hour(ledger, "nobody") == []


def test_aggregates_on_sqlite(sqlite_url: str) -> None:
    ledger = Ledger.open(sqlite_url)
    seed(ledger)
    check(ledger)


@pytest.mark.postgres
def test_aggregates_on_postgresql(pg_url: str) -> None:
    ledger = Ledger.open(pg_url)
    seed(ledger)
    check(ledger)


def test_the_board_reads_only_the_newest_holdout(sqlite_url: str, tmp_path) -> None:
    ledger = Ledger.open(sqlite_url)
    store = open_store(f"file://{tmp_path / 'lake'}")
    assert leaderboard.board(ledger, "m") == {"holdout": None, "scores": {}}
    first, second = (
        put_batch(store, ledger, make_rows(20, seed=n), batch_number=n) for n in (1, 2)
    )
    with ledger.session() as session:
        for batch, version in ((first, "1"), (second, "2")):
            session.add(
                Training(batch_id=batch.id, mlflow_run_id=f"run{version}", model_name="m",
                         model_version=version, training_batch_ids=[batch.id], rows_holdout=4)
            )  # fmt: skip
        session.add(VersionScore(model_name="m", model_version="1", holdout_batch_id=first.id,
                                 holdout_rows=4, mae=10.0, rmse=20.0))  # fmt: skip
        session.add(VersionScore(model_name="m", model_version="2", holdout_batch_id=second.id,
                                 holdout_rows=4, mae=30.0, rmse=40.0))  # fmt: skip
    board = leaderboard.board(ledger, "m")
    assert board["holdout"]["batch_id"] == second.id and board["holdout"]["rows"] == 4
    assert set(board["scores"]) == {"2"}  # v1's score is on another holdout: not on this board
    duplicate = VersionScore(model_name="m", model_version="2", holdout_batch_id=second.id,
                             holdout_rows=4, mae=99.0, rmse=99.0)  # fmt: skip
    recorded, created = leaderboard.record_score(ledger, duplicate)
    assert (created, recorded.mae) == (False, 30.0)  # a concurrent scorer's row wins, once

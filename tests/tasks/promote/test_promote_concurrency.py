"""promote's read-compare-move: one promotion at a time, and no move on a stale comparison."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tasks.core import registry
from tasks.core.leaderboard import scores_on
from tasks.core.ledger import Ledger, Promotion, Training
from tasks.core.settings import TaskSettings
from tasks.core.storage import open_store
from tasks.core.training_ledger import promotion_lock
from tasks.promote import step as promote
from tests.tasks.train_factories import curated_batch, make_rows


@pytest.mark.parametrize(
    "backend", ["sqlite_url", pytest.param("pg_url", marks=pytest.mark.postgres)]
)
def test_promotion_lock_lets_one_promotion_in_at_a_time(
    backend: str, request: pytest.FixtureRequest
) -> None:
    ledger = Ledger.open(request.getfixturevalue(backend))
    inside = threading.Event()
    events: list[tuple[str, float]] = []

    def first() -> None:
        with promotion_lock(ledger, "m"):
            events.append(("first in", time.monotonic()))
            inside.set()
            time.sleep(0.6)
            events.append(("first out", time.monotonic()))

    def second() -> None:
        inside.wait(10)
        with promotion_lock(ledger, "m"):
            events.append(("second in", time.monotonic()))

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert [name for name, _ in events] == ["first in", "first out", "second in"]


def test_rows_added_under_the_lock_commit_and_an_error_rolls_them_back(
    sqlite_url: str, tmp_path: Path
) -> None:
    ledger = Ledger.open(sqlite_url)
    lake = open_store(f"file://{tmp_path / 'lake'}")
    batches = [curated_batch(lake, ledger, make_rows(10, n), batch_number=n) for n in (1, 2)]

    def promotion(version: str) -> Promotion:  # one per batch: the database allows no more
        return Promotion(
            batch_id=batches[int(version) - 1].id,
            model_name="m",
            challenger_version=version,
            promoted=False,
            reasons=[],
            challenger_metrics={},
            champion_metrics={},
        )

    with promotion_lock(ledger, "m") as session:
        session.add(promotion("1"))

    def fail_midway() -> None:
        with promotion_lock(ledger, "m") as session:
            session.add(promotion("2"))
            session.flush()
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fail_midway()
    with ledger.session() as session:
        assert [p.challenger_version for p in session.query(Promotion)] == ["1"]


class FakeRegistry:
    """The registry calls promote makes, recorded; the alias answers from a script."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, aliases: list[str | None]) -> None:
        self.aliases = aliases
        self.moves: list[str] = []
        self.registered = ["1", "2"]  # the versions the leaderboard finds
        self.tags: dict[str, dict[str, Any]] = {}
        monkeypatch.setattr(registry, "client", lambda uri: self)
        monkeypatch.setattr(registry, "get_version", lambda c, name, version: version)
        monkeypatch.setattr(registry, "champion_version", lambda c, name: self.aliases.pop(0))
        monkeypatch.setattr(registry, "make_production", lambda c, n, v: self.moves.append(v))
        monkeypatch.setattr(
            registry, "set_version_tags", lambda c, n, v, tags: self.tags.update({v: dict(tags)})
        )
        scores = {
            "1": {"mae": 100_000.0, "rmse": 150_000.0},
            "2": {"mae": 80_000.0, "rmse": 120_000.0},
        }
        monkeypatch.setattr(
            promote, "score_version", lambda s, version, rows: dict(scores[version])
        )

    def search_model_versions(self, filter_string: str) -> list[SimpleNamespace]:
        return [SimpleNamespace(version=v, run_id=f"run{v}") for v in self.registered]


@pytest.fixture
def trained(tmp_path: Path) -> tuple[TaskSettings, int]:
    """A ledger where batch 1 trained version 2 (version 1 being the champion)."""
    settings = TaskSettings(
        ledger_url=f"sqlite:///{tmp_path / 'ledger.db'}",
        storage_url=f"file://{tmp_path / 'lake'}",
        model_name="m",
        mlflow_tracking_uri="http://unused.invalid",
    )
    ledger = Ledger.open(settings.ledger_url)
    store = open_store(settings.storage_url, settings)
    batch = curated_batch(store, ledger, make_rows(200, 5), batch_number=1)
    with ledger.session() as session:
        session.add(
            Training(
                batch_id=batch.id,
                mlflow_run_id="r",
                model_name="m",
                model_version="2",
                training_batch_ids=[batch.id],
                metrics={},
                holdout_share=0.2,
                reasons=["test"],
            )
        )
    return settings, batch.id


def test_a_champion_that_changed_during_the_evaluation_is_not_replaced(
    trained: tuple[TaskSettings, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, batch_id = trained
    fake = FakeRegistry(monkeypatch, aliases=["1", "3"])  # another run promoted v3 meanwhile
    with pytest.raises(promote.PromotionRefusedError, match=r"moved from v1 to v3.*re-run promote"):
        promote.run(promote.PromoteInputs(batch_id=batch_id), settings)
    assert fake.moves == [] and fake.tags == {}
    assert promote.find_promotion(Ledger.open(settings.ledger_url), batch_id) is None


def test_an_unchanged_champion_is_replaced_once_and_a_rerun_writes_nothing(
    trained: tuple[TaskSettings, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, batch_id = trained
    fake = FakeRegistry(monkeypatch, aliases=["1", "1"])
    result = promote.run(promote.PromoteInputs(batch_id=batch_id), settings)
    assert result["promoted"] is True and result["champion_version"] == "1"
    assert result["reasons"][0].startswith("MAE 80,000 vs champion v1 100,000: 20.0% better")
    assert fake.moves == ["2"]
    assert fake.tags["2"]["promoted"] == "true" and "promoted_at" in fake.tags["2"]
    again = promote.run(promote.PromoteInputs(batch_id=batch_id), settings)
    assert again["promotion_id"] == result["promotion_id"] and again["status"] == "existing"
    assert fake.moves == ["2"]  # nothing moved the second time
    # the leaderboard: both versions scored on batch 1's holdout (the newest training's)
    assert result["leaderboard_holdout_batch_id"] == batch_id
    assert (result["leaderboard_scored"], result["leaderboard_skipped"]) == (["v1", "v2"], [])
    scores = scores_on(Ledger.open(settings.ledger_url), "m", batch_id)
    assert {v: (s.mae, s.mlflow_run_id) for v, s in scores.items()} == {
        "1": (100_000.0, "run1"), "2": (80_000.0, "run2"),
    }  # fmt: skip


def test_a_version_that_cannot_be_loaded_is_skipped_named_and_not_recorded(
    trained: tuple[TaskSettings, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, batch_id = trained
    held_out = _record_train_metrics(settings, batch_id)
    fake = FakeRegistry(monkeypatch, aliases=["1", "1"])
    fake.registered = ["1", "2", "3"]  # v3: registered by hand, its artifacts gone

    def score(s: TaskSettings, version: str, rows: Any) -> dict[str, float]:
        if version == "3":
            raise OSError("No such file or directory: model/MLmodel")
        return {"mae": 100_000.0, "rmse": 150_000.0}

    monkeypatch.setattr(promote, "score_version", score)
    result = promote.run(promote.PromoteInputs(batch_id=batch_id), settings)
    assert result["leaderboard_scored"] == ["v1", "v2"]  # both measured already: reused
    assert result["leaderboard_skipped"] == ["v3"]
    scores = scores_on(Ledger.open(settings.ledger_url), "m", batch_id)
    assert set(scores) == {"1", "2"}
    assert {s.holdout_rows for s in scores.values()} == {held_out}
    assert scores["2"].mae == 80_000.0  # train's own number on these rows


def test_nan_metrics_fail_the_task_and_promote_nothing(
    trained: tuple[TaskSettings, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, batch_id = trained
    fake = FakeRegistry(monkeypatch, aliases=["1", "1"])
    monkeypatch.setattr(
        promote, "score_version", lambda s, v, rows: {"mae": float("nan"), "rmse": 1.0}
    )
    with pytest.raises(promote.promotion_rule.PromotionRuleError, match="MAE is nan"):
        promote.run(promote.PromoteInputs(batch_id=batch_id), settings)
    assert fake.moves == []
    assert promote.find_promotion(Ledger.open(settings.ledger_url), batch_id) is None


def _record_train_metrics(settings: TaskSettings, batch_id: int, *, rows_off: int = 0) -> int:
    """Give batch_id's training the metrics and holdout size train records; the rows' count."""
    ledger = Ledger.open(settings.ledger_url)
    store = open_store(settings.storage_url, settings)
    batches = promote.curated_batches_by_id(ledger, [batch_id])
    held_out = len(promote.load_holdout(store, batches, 0.2))
    with ledger.session() as session:
        training = session.query(Training).filter_by(batch_id=batch_id).one()
        training.metrics = {"mae": 80_000.0, "rmse": 120_000.0, "baseline_mae": 200_000.0}
        training.rows_holdout = held_out + rows_off
    return held_out


def test_the_challenger_keeps_the_metrics_train_measured_and_only_the_champion_is_scored(
    trained: tuple[TaskSettings, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, batch_id = trained
    held_out = _record_train_metrics(settings, batch_id)
    fake = FakeRegistry(monkeypatch, aliases=["1", "1"])
    scored: list[tuple[str, int]] = []
    monkeypatch.setattr(
        promote,
        "score_version",
        lambda s, version, rows: (
            scored.append((version, len(rows))) or {"mae": 100_000.0, "rmse": 150_000.0}
        ),
    )
    result = promote.run(promote.PromoteInputs(batch_id=batch_id), settings)
    assert scored == [("1", held_out)]  # the champion, on train's holdout rows
    assert result["challenger_metrics"] == {"mae": 80_000.0, "rmse": 120_000.0, "rows": held_out}
    assert result["promoted"] is True and fake.moves == ["2"]


def test_without_a_champion_nothing_is_scored(
    trained: tuple[TaskSettings, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, batch_id = trained
    _record_train_metrics(settings, batch_id)
    FakeRegistry(monkeypatch, aliases=[None, None]).registered = ["2"]  # the first version
    monkeypatch.setattr(promote, "load_holdout", lambda *a: pytest.fail("no rows needed"))
    monkeypatch.setattr(promote, "score_version", lambda *a: pytest.fail("nothing to score"))
    result = promote.run(promote.PromoteInputs(batch_id=batch_id), settings)
    assert result["promoted"] is True and result["challenger_metrics"]["mae"] == 80_000.0


def test_a_holdout_that_is_not_train_s_is_refused(
    trained: tuple[TaskSettings, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, batch_id = trained
    _record_train_metrics(settings, batch_id, rows_off=3)  # the curated rows changed since
    fake = FakeRegistry(monkeypatch, aliases=["1", "1"])
    with pytest.raises(promote.PromotionRefusedError, match="curated data changed"):
        promote.run(promote.PromoteInputs(batch_id=batch_id), settings)
    assert fake.moves == []

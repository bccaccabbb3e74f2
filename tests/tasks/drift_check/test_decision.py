"""The pure drift decision: train or skip, always with reasons a person can read."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tasks.drift_check.decision import (
    ColumnDrift,
    DriftFacts,
    DriftMeasures,
    DriftThresholds,
    LiveWindow,
    decide_drift,
)

LIMITS = DriftThresholds(share=0.3, target=0.1, min_train_rows=10_000, new_value_min_share=0.01)
COLUMNS = ("log_price", "bed", "bath", "acre_lot", "house_size", "status", "state")
DRIFT_GROUNDS = {"first_model", "target_drift", "column_share", "new_values"}


def measures(scores: dict[str, float] | None = None, new_values=None) -> DriftMeasures:
    scores = {c: 0.01 for c in COLUMNS} | (scores or {})
    return DriftMeasures(
        columns=[ColumnDrift(c, "wasserstein", s, 0.1) for c, s in scores.items()],
        target_column="log_price",
        new_values=new_values or {},
    )


def facts(rows: int = 50_000, **kw) -> DriftFacts:
    kw.setdefault("has_champion", True)
    kw.setdefault("measures", measures() if kw["has_champion"] else None)
    return DriftFacts(batch_rows=rows, **kw)


def test_first_model_trains() -> None:
    verdict = decide_drift(facts(has_champion=False), LIMITS)
    assert verdict.decision == "train"
    assert verdict.reasons[0] == "first model: no model in production"
    assert verdict.grounds == ("first_model",)


def test_even_the_first_model_waits_for_enough_rows() -> None:
    verdict = decide_drift(facts(4_055, has_champion=False, states=["Vermont"]), LIMITS)
    assert verdict.decision == "skip"
    assert verdict.reasons == [
        "4,055 rows from one state (Vermont): below the minimum volume (10,000)"
    ]


def test_volume_skips_even_with_drift_and_says_what_it_did_not_act_on() -> None:
    m = measures({"log_price": 0.5})
    verdict = decide_drift(facts(500, measures=m, states=["Ohio", "Texas"]), LIMITS)
    assert verdict.decision == "skip"
    assert verdict.reasons[0] == "500 rows: below the minimum volume (10,000)"
    assert any(r.startswith("not acted on: price drifted") for r in verdict.reasons)


def test_quarantined_batches_skip_with_the_quarantine_reason() -> None:
    verdict = decide_drift(
        facts(0, quarantined=True, quarantine_reasons=["schema: column 'bath' is missing"]),
        LIMITS,
    )
    assert verdict.decision == "skip"
    assert verdict.reasons == ["batch quarantined: schema: column 'bath' is missing"]


def test_target_drift_trains() -> None:
    verdict = decide_drift(facts(measures=measures({"log_price": 0.31})), LIMITS)
    assert verdict.decision == "train"
    assert verdict.reasons[0] == (
        "price drifted: Wasserstein distance (log_price, normed) 0.31 > 0.10"
    )


def test_a_share_of_drifted_columns_trains() -> None:
    m = measures({"bed": 0.2, "bath": 0.2, "state": 0.3})
    verdict = decide_drift(facts(measures=m), LIMITS)
    assert verdict.decision == "train"
    assert verdict.reasons == ["3 of 7 columns drifted (share 0.43 >= 0.30): bed, bath, state"]


def test_new_status_values_train() -> None:
    m = measures({"status": 0.83}, new_values={"status": {"sold": 229_792}})
    verdict = decide_drift(facts(229_792, measures=m), LIMITS)
    assert verdict.decision == "train"
    assert "new status values not in the reference: sold (229,792 rows, 100.0% of the batch)" in (
        verdict.reasons
    )


def test_a_handful_of_rows_of_a_new_state_is_only_noted() -> None:
    m = measures(new_values={"state": {"Guam": 3}})
    verdict = decide_drift(facts(50_000, measures=m), LIMITS)
    assert verdict.decision == "skip"
    assert verdict.reasons[0] == "no drift: share 0.00 < 0.30, price distance 0.01 <= 0.10"
    assert "too few to matter: Guam (3 rows" in verdict.reasons[1]


def test_no_drift_skips() -> None:
    verdict = decide_drift(facts(measures=measures({"state": 0.12})), LIMITS)
    assert verdict.decision == "skip"
    assert verdict.reasons == [
        "no drift: share 0.14 < 0.30, price distance 0.01 <= 0.10",
        "1 of 7 columns drifted (share 0.14 < 0.30): state",
    ]


def test_boundaries() -> None:
    at_target = decide_drift(facts(measures=measures({"log_price": 0.1})), LIMITS)
    assert at_target.decision == "skip"  # distance must be above the threshold
    at_share = measures({"bed": 0.1, "bath": 0.1, "state": 0.1})  # 3/7 = 0.43 ... use 0.3 share
    limits = DriftThresholds(share=3 / 7, target=0.1, min_train_rows=10, new_value_min_share=0.01)
    assert decide_drift(facts(measures=at_share), limits).decision == "train"  # share >= limit
    assert decide_drift(facts(10_000, has_champion=False), LIMITS).decision == "train"
    assert decide_drift(facts(9_999, has_champion=False), LIMITS).decision == "skip"


def test_a_column_with_no_values_is_left_out_of_the_share() -> None:
    m = measures({"house_size": math.nan, "bed": 0.2, "bath": 0.2})
    verdict = decide_drift(facts(measures=m), LIMITS)
    assert verdict.decision == "train"
    assert verdict.reasons[0].startswith("2 of 6 columns drifted (share 0.33 >= 0.30)")
    assert "drift not measurable (no values on one side): house_size" in verdict.reasons


def test_missing_evidence_never_becomes_a_decision() -> None:
    with pytest.raises(ValueError, match="no drift was measured"):
        decide_drift(DriftFacts(batch_rows=50_000, has_champion=True, measures=None), LIMITS)
    with pytest.raises(ValueError, match="target"):
        decide_drift(facts(measures=measures({"log_price": math.nan})), LIMITS)


scores = st.one_of(st.floats(min_value=0, max_value=2, allow_nan=False), st.just(math.nan))


@settings(max_examples=400, deadline=None)
@given(
    rows=st.integers(min_value=0, max_value=100_000),
    quarantined=st.booleans(),
    champion=st.booleans(),
    column_scores=st.fixed_dictionaries({c: scores for c in COLUMNS[1:]}),
    target=st.floats(min_value=0, max_value=2, allow_nan=False),
    new_rows=st.dictionaries(
        st.sampled_from(["status", "state"]),
        st.dictionaries(st.sampled_from(["sold", "Guam", "Atlantis"]), st.integers(0, 100_000)),
        max_size=2,
    ),
    share=st.floats(min_value=0, max_value=1),
    target_limit=st.floats(min_value=0, max_value=1),
    min_rows=st.integers(min_value=1, max_value=50_000),
    new_share=st.floats(min_value=0, max_value=1),
)
def test_every_decision_has_reasons_and_train_has_a_drift_or_first_model_ground(
    rows, quarantined, champion, column_scores, target, new_rows, share, target_limit, min_rows,
    new_share,
) -> None:  # fmt: skip
    limits = DriftThresholds(share, target_limit, min_rows, new_share)
    m = measures({"log_price": target, **column_scores}, new_values=new_rows)
    verdict = decide_drift(
        DriftFacts(
            batch_rows=rows,
            states=["Vermont"],
            quarantined=quarantined,
            quarantine_reasons=["too many bad rows"],
            has_champion=champion,
            measures=m if champion else None,
        ),
        limits,
    )
    assert verdict.reasons and all(isinstance(r, str) and r for r in verdict.reasons)
    assert verdict.decision in ("train", "skip")
    if verdict.decision == "train":
        assert verdict.grounds and set(verdict.grounds) <= DRIFT_GROUNDS
        assert not quarantined and rows >= min_rows
        assert any(
            r.startswith(("first model", "price drifted", "new ")) or " columns drifted (share" in r
            for r in verdict.reasons
        )
    if quarantined or rows < min_rows:
        assert verdict.decision == "skip"
    if not champion and not quarantined and rows >= min_rows:
        assert verdict.grounds == ("first_model",)


# --- live drift: the latest monitor window as one more reason -------------------------------

WINDOW_END = datetime(2026, 5, 4, 14, 0, tzinfo=UTC)


def window(decision: str = "drifted", version: str = "3", **kw) -> LiveWindow:
    kw.setdefault("drift_share", 0.6 if decision == "drifted" else 0.1)
    kw.setdefault("rows", 4_812)
    kw.setdefault(
        "top_features", (("state", 0.41), ("house_size", 0.22)) if decision == "drifted" else ()
    )
    return LiveWindow(12, decision, model_version=version, window_end=WINDOW_END, **kw)


def live_facts(rows: int = 50_000, live: LiveWindow | None = None, **kw) -> DriftFacts:
    kw.setdefault("champion_version", "3")
    return facts(rows, live=live, **kw)


def test_a_drifted_live_window_alone_trains_with_its_reasons() -> None:
    live = window(
        reasons=(
            "live drift share 0.60 >= 0.50 since v3 was trained: state (Jensen-Shannon 0.41)",
            "users now ask about Vermont",
        )
    )
    verdict = decide_drift(live_facts(live=live), LIMITS)
    assert verdict.decision == "train"
    assert verdict.grounds == ("live_drift",)
    assert verdict.reasons[0] == (  # the window's share line is not said twice
        "users now ask differently: live drift share 0.60 since v3 was trained "
        "(window 12, 4,812 requests): state 0.41, house_size 0.22; users now ask about Vermont"
    )
    assert verdict.live_window_id == 12


def test_live_drift_joins_the_batch_drift() -> None:
    verdict = decide_drift(live_facts(measures=measures({"log_price": 0.5}), live=window()), LIMITS)
    assert verdict.grounds == ("target_drift", "live_drift")


def test_a_window_against_another_version_is_only_a_note() -> None:
    verdict = decide_drift(live_facts(live=window(version="2")), LIMITS)
    assert verdict.decision == "skip"
    assert "live window 12 compared against v2, production is v3: not used" in verdict.reasons
    assert verdict.live_window_id == 12


def test_stable_and_too_few_rows_windows_are_notes() -> None:
    stable = decide_drift(live_facts(live=window("stable")), LIMITS)
    assert stable.decision == "skip"
    assert stable.reasons[-1] == (
        "live traffic stable: window 12 (4,812 requests, drift share 0.10 against v3)"
    )
    few = decide_drift(live_facts(live=window("too_few_rows", drift_share=None, rows=40)), LIMITS)
    assert few.decision == "skip"
    assert few.reasons[-1] == "live window 12 had too few requests to judge (40): not used"


def test_live_drift_never_overrides_volume_or_quarantine() -> None:
    small = decide_drift(live_facts(500, live=window()), LIMITS)
    assert small.decision == "skip"
    assert small.reasons[0] == "500 rows: below the minimum volume (10,000)"
    assert small.reasons[1].startswith("not acted on: users now ask differently")
    quarantined = decide_drift(
        live_facts(0, live=window(), quarantined=True, quarantine_reasons=["schema"]), LIMITS
    )
    assert quarantined.decision == "skip"
    assert quarantined.reasons == [
        "batch quarantined: schema",
        "not acted on: live window 12 drifted (share 0.60 against v3, 4,812 requests)",
    ]
    assert quarantined.live_window_id == 12


def test_the_first_model_notes_a_window_it_cannot_use() -> None:
    verdict = decide_drift(live_facts(has_champion=False, live=window()), LIMITS)
    assert verdict.grounds == ("first_model",)
    assert verdict.reasons[-1] == "live window 12: not used, no model in production"


windows = st.builds(
    LiveWindow,
    window_id=st.integers(1, 10_000),
    decision=st.sampled_from(["stable", "drifted", "too_few_rows"]),
    drift_share=st.one_of(st.none(), st.floats(0, 1)),
    rows=st.integers(0, 1_000_000),
    model_version=st.sampled_from(["1", "2", "3", None]),
    window_end=st.just(WINDOW_END),
    top_features=st.lists(st.tuples(st.sampled_from(COLUMNS[1:]), st.floats(0, 1)), max_size=3).map(
        tuple
    ),
    reasons=st.sampled_from([(), ("users now ask about Vermont",), ("state drifted", "x")]),
)
batch_facts = st.builds(
    lambda rows, quarantined, champion, scores, new: DriftFacts(
        batch_rows=rows,
        states=["Vermont"],
        quarantined=quarantined,
        quarantine_reasons=["too many bad rows"],
        has_champion=champion,
        champion_version="3" if champion else None,
        measures=measures(scores, new_values=new) if champion else None,
    ),
    rows=st.integers(0, 40_000),
    quarantined=st.booleans(),
    champion=st.booleans(),
    scores=st.fixed_dictionaries({c: st.floats(0, 0.5) for c in COLUMNS}),
    new=st.just({}) | st.just({"state": {"Guam": 2_000}}),
)


@settings(max_examples=100, deadline=None)
@given(facts_=batch_facts, live=windows)
def test_a_train_always_carries_a_ground_with_its_reason(facts_, live) -> None:
    verdict = decide_drift(replace(facts_, live=live), LIMITS)
    assert verdict.reasons and all(isinstance(r, str) and r for r in verdict.reasons)
    assert verdict.live_window_id == live.window_id  # a window passed is always mentioned
    if verdict.decision == "train":
        assert verdict.grounds and set(verdict.grounds) <= DRIFT_GROUNDS | {"live_drift"}
        if "live_drift" in verdict.grounds:
            assert any(r.startswith("users now ask differently") for r in verdict.reasons)


@settings(max_examples=100, deadline=None)
@given(live=windows, rows=st.integers(LIMITS.min_train_rows, 1_000_000))
def test_live_drift_alone_trains_on_enough_rows_with_a_champion(live, rows) -> None:
    live = replace(live, decision="drifted", model_version="3")
    verdict = decide_drift(live_facts(rows, live=live), LIMITS)  # the batch itself: no drift
    assert verdict.decision == "train"
    assert verdict.grounds == ("live_drift",)


@settings(max_examples=100, deadline=None)
@given(facts_=batch_facts, live=windows)
def test_a_quarantined_batch_stays_skip_whatever_the_window(facts_, live) -> None:
    verdict = decide_drift(replace(facts_, quarantined=True, live=live), LIMITS)
    assert verdict.decision == "skip"
    assert verdict.reasons[0] == "batch quarantined: too many bad rows"


@settings(max_examples=100, deadline=None)
@given(facts_=batch_facts, live=windows)
def test_a_window_that_is_not_current_drift_never_changes_the_decision(facts_, live) -> None:
    """A stable or too-small window, or one against another version, is only a note."""
    if live.decision == "drifted" and live.model_version == "3":
        live = replace(live, decision="stable")
    without = decide_drift(facts_, LIMITS)
    with_window = decide_drift(replace(facts_, live=live), LIMITS)
    assert with_window.decision == without.decision
    assert with_window.grounds == without.grounds
    assert with_window.reasons[: len(without.reasons)] == without.reasons


@settings(max_examples=100, deadline=None)
@given(facts_=batch_facts, live=windows)
def test_too_few_rows_skip_whatever_the_window(facts_, live) -> None:
    rows = min(facts_.batch_rows, LIMITS.min_train_rows - 1)
    verdict = decide_drift(replace(facts_, batch_rows=rows, live=live), LIMITS)
    assert verdict.decision == "skip"
    current = facts_.has_champion and live.model_version == "3"
    if not facts_.quarantined and live.decision == "drifted" and current:
        assert any(r.startswith("not acted on: users now ask differently") for r in verdict.reasons)

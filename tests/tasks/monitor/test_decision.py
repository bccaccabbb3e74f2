"""tasks.monitor's pure decision: stable, drifted or too_few_rows, with readable reasons."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tasks.core.drift import ColumnDrift
from tasks.monitor.decision import MonitorLimits, ValueShare, WindowFacts, decide_window

LIMITS = MonitorLimits(min_rows=200, share=0.5, value_shift=0.2)
SINCE = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def columns(**scores: float) -> list[ColumnDrift]:
    method = {"state": "jensenshannon", "status": "jensenshannon"}
    return [ColumnDrift(c, method.get(c, "wasserstein"), s, 0.1) for c, s in scores.items()]


def test_too_few_rows_says_how_many_since_when_and_waits() -> None:
    verdict = decide_window(WindowFacts(rows=37, since=SINCE), LIMITS)
    assert verdict.decision == "too_few_rows" and not verdict.consumed
    assert verdict.reasons == [
        "37 requests since 2026-12-07 12:00 UTC: below the minimum (200) to measure drift"
    ]
    assert verdict.drift_share is None


def test_drifted_names_the_features_strongest_first_and_the_new_state() -> None:
    facts = WindowFacts(
        rows=1000,
        since=SINCE,
        model_version="3",
        columns=columns(bed=0.12, bath=0.02, acre_lot=0.01, house_size=0.3, status=0.0, state=0.41),
        values=[ValueShare("state", "Vermont", 0.62, 0.0), ValueShare("state", "Texas", 0.1, 0.14)],
    )
    verdict = decide_window(facts, LIMITS)
    assert verdict.decision == "drifted" and verdict.consumed
    assert verdict.reasons[0] == (
        "live drift share 0.50 >= 0.50 since v3 was trained: state (Jensen-Shannon 0.41), "
        "house_size (Wasserstein 0.30), bed (Wasserstein 0.12)"
    )
    assert verdict.reasons[1] == (
        "users now ask about Vermont: 62% of requests, 0% of the training data"
    )
    assert len(verdict.reasons) == 2  # Texas did not shift by 0.2
    assert verdict.drifted_features == ["state", "house_size", "bed"]


def test_stable_says_why_and_mentions_sampling_and_unmeasured() -> None:
    facts = WindowFacts(
        rows=80_000,
        model_version="2",
        columns=columns(bed=0.01, bath=0.02, acre_lot=math.nan, house_size=0.2, status=0.0),
        sampled_rows=50_000,
    )
    verdict = decide_window(facts, LIMITS)
    assert verdict.decision == "stable"
    assert verdict.reasons[0] == (
        "no live drift: share 0.25 < 0.50 since v2 was trained "
        "(1 of 4 features drifted: house_size (Wasserstein 0.20))"
    )
    assert "drift not measurable (no values on one side): acre_lot" in verdict.reasons
    assert verdict.reasons[-1] == "measured on a seeded sample of 50,000 of 80,000 requests"


def test_enough_rows_but_nothing_measured_refuses_to_guess() -> None:
    with pytest.raises(ValueError, match="no feature's drift could be measured"):
        decide_window(WindowFacts(rows=500, columns=columns(bed=math.nan)), LIMITS)


scores = st.one_of(st.floats(0, 1), st.just(math.nan))


@given(
    rows=st.integers(0, 10_000),
    values=st.lists(scores, min_size=6, max_size=6).filter(
        lambda v: any(not math.isnan(x) for x in v)
    ),
    share=st.floats(0, 1),
    min_rows=st.integers(2, 1000),
)
def test_the_rule_holds_for_any_window(
    rows: int, values: list[float], share: float, min_rows: int
) -> None:
    limits = MonitorLimits(min_rows=min_rows, share=share, value_shift=0.2)
    cols = columns(
        **dict(
            zip(("bed", "bath", "acre_lot", "house_size", "status", "state"), values, strict=True)
        )
    )
    verdict = decide_window(WindowFacts(rows=rows, columns=cols), limits)
    assert verdict.reasons and all(verdict.reasons)
    if rows < min_rows:
        assert verdict.decision == "too_few_rows" and not verdict.consumed
        return
    measured = [c for c in cols if c.measured]
    expected = sum(c.drifted for c in measured) / len(measured)
    assert verdict.drift_share == pytest.approx(expected)
    assert verdict.decision == ("drifted" if expected >= share else "stable")
    assert verdict.consumed
    assert set(verdict.drifted_features) == {c.column for c in cols if c.drifted}

"""The shadow comparison and the minimum shadow period (tasks/promote/shadow.py): pure."""

from __future__ import annotations

import datetime as dt
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tasks.promote import shadow

SINCE = dt.datetime(2026, 12, 7, 12, 3, tzinfo=dt.UTC)


def test_the_comparison_counts_requests_and_measures_the_gap():
    production = [100_000.0, 200_000.0, 300_000.0, 400_000.0]
    challenger = [100_000.0, 210_000.0, 360_000.0, 400_000.0]  # 0%, 5%, 20%, 0% apart
    found = shadow.compare(["a", "a", "b", "c"], production, challenger, since=SINCE)
    assert (found.requests, found.predictions, found.unpriced) == (3, 4, 0)
    gaps = sorted(abs(math.log10(c / p)) for p, c in zip(production, challenger, strict=True))
    assert found.median_abs_log10 == pytest.approx((gaps[1] + gaps[2]) / 2)
    assert found.share_apart == 0.25
    text = shadow.reason(found, "5", "4")
    assert text.startswith("shadow: 3 live requests (4 predictions) since 2026-12-07 12:03 UTC")
    assert "median |Δ log10 price| 0.0" in text and "25.0% more than 10% apart" in text


def test_no_shadow_rows_is_said():
    found = shadow.compare([], [], [])
    assert found == shadow.ShadowComparison(0, 0)
    assert shadow.reason(found, "5", "4").startswith(
        "shadow: no live request compared v5 with production v4"
    )


def test_prices_without_a_log_are_left_out_and_said():
    found = shadow.compare(["a", "b"], [100.0, 0.0], [105.0, 50.0])
    assert found.unpriced == 1 and found.share_apart == 0.0
    assert "1 predictions without a positive price left out" in shadow.reason(found, "2", "1")


def test_unequal_pairs_are_refused():
    with pytest.raises(ValueError, match="unequal lengths"):
        shadow.compare(["a"], [1.0, 2.0], [1.0, 2.0])


def test_a_short_shadow_holds_a_promotion_and_says_how_to_go_on():
    few = shadow.ShadowComparison(120, 120)
    promote, held, reasons = shadow.hold(True, ["MAE better"], few, min_requests=1000, batch_id=7)
    assert (promote, held) == (False, True)
    assert reasons[0].startswith("held: 120 of 1,000 shadow requests")
    assert "re-run promote for batch 7 later" in reasons[0] and reasons[1] == "MAE better"


def test_the_hold_applies_only_to_a_promotion_that_needs_it():
    enough = shadow.ShadowComparison(1000, 1000)
    assert shadow.hold(True, ["r"], enough, min_requests=1000, batch_id=1) == (True, False, ["r"])
    few = shadow.ShadowComparison(3, 3)
    assert shadow.hold(False, ["r"], few, min_requests=1000, batch_id=1) == (False, False, ["r"])
    assert shadow.hold(True, ["r"], few, min_requests=0, batch_id=1) == (True, False, ["r"])
    assert shadow.hold(True, ["r"], None, min_requests=9, batch_id=1) == (True, False, ["r"])


prices = st.floats(min_value=1.0, max_value=1e8, allow_nan=False)


@given(st.lists(st.tuples(prices, prices), min_size=1, max_size=50))
def test_the_figures_are_bounded_and_symmetric(pairs):
    ids = [str(i) for i in range(len(pairs))]
    p, c = [a for a, _ in pairs], [b for _, b in pairs]
    found = shadow.compare(ids, p, c)
    assert 0.0 <= found.share_apart <= 1.0 and found.median_abs_log10 >= 0.0
    assert shadow.compare(ids, c, p).median_abs_log10 == pytest.approx(found.median_abs_log10)
    same = shadow.compare(ids, p, p)
    assert same.median_abs_log10 == 0.0 and same.share_apart == 0.0


def test_apart_is_symmetric_as_on_the_monitoring_page():
    """One exceeds the other by more than 10%, whichever: 90.5k against 100k is apart (100k is
    10.5% above it), 91k is not; the page's SQL (tasks.core.monitoring_reads) says the same."""
    found = shadow.compare(["a", "b"], [100_000.0, 100_000.0], [90_500.0, 91_000.0], since=SINCE)
    assert found.share_apart == 0.5

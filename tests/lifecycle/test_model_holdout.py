"""The holdout split: deterministic, by property, stable across batches and row order."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tasks.holdout import holdout_mask, holdout_scores, split_holdout
from tests.lifecycle.factories import make_rows

streets = st.one_of(st.none(), st.integers(min_value=0, max_value=3_000_000))
zips = st.one_of(st.none(), st.from_regex(r"[0-9]{5}", fullmatch=True))
prices = st.one_of(st.none(), st.floats(min_value=1, max_value=1e8, allow_nan=False))
rows = st.lists(st.tuples(streets, zips, prices), min_size=0, max_size=40)
#: pandas per example is slow-ish and machine load varies: no deadline, fewer examples
quick = settings(deadline=None, max_examples=40)


def frame(values: list[tuple[int | None, str | None, float | None]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "street": pd.array([v[0] for v in values], dtype="Int64"),
            "zip_code": pd.Series([v[1] for v in values], dtype=object),
            "price": pd.Series([v[2] for v in values], dtype="float64"),
            "state": "Texas",
        }
    )


@quick
@given(rows)
def test_a_row_is_on_the_same_side_alone_or_among_others(values: list) -> None:
    together = holdout_mask(frame(values), 0.3)
    alone = [holdout_mask(frame([v]), 0.3)[0] for v in values]
    assert together.tolist() == alone


@quick
@given(rows, st.randoms(use_true_random=False))
def test_row_order_does_not_matter(values: list, rnd) -> None:
    shuffled = list(values)
    rnd.shuffle(shuffled)
    masks = dict(zip(map(repr, values), holdout_mask(frame(values), 0.25), strict=True))
    for value, side in zip(shuffled, holdout_mask(frame(shuffled), 0.25), strict=True):
        assert masks[repr(value)] == side


@quick
@given(st.integers(0, 3_000_000), st.from_regex(r"[0-9]{5}", fullmatch=True), prices, prices)
def test_the_same_property_at_another_price_stays_on_its_side(
    street: int, zip_code: str, first: float | None, second: float | None
) -> None:
    mask = holdout_mask(frame([(street, zip_code, first), (street, zip_code, second)]), 0.5)
    assert mask[0] == mask[1]


@quick
@given(rows)
def test_a_larger_share_only_adds_rows(values: list) -> None:
    small, large = holdout_mask(frame(values), 0.1), holdout_mask(frame(values), 0.4)
    assert not np.any(small & ~large)


def test_empty_frame_gives_an_empty_split() -> None:
    train, hold = split_holdout(frame([]), 0.2)
    assert train.empty and hold.empty


def test_a_single_row_lands_on_exactly_one_side() -> None:
    train, hold = split_holdout(frame([(12, "00601", 100_000.0)]), 0.2)
    assert len(train) + len(hold) == 1


@quick
@given(prices)
def test_rows_without_street_fall_back_to_a_whole_row_hash(price: float | None) -> None:
    no_street = frame([(None, "00601", price), (None, "00601", price)])
    scores = holdout_scores(no_street)
    assert scores[0] == scores[1]  # identical rows: identical score
    other = frame([(None, "00601", (price or 0) + 1)])
    assert 0 <= holdout_scores(other)[0] < 1


def test_share_is_respected_on_realistic_rows_and_is_stable() -> None:
    table = make_rows(20_000, seed=5).to_pandas(date_as_object=False)
    mask = holdout_mask(table, 0.2)
    assert 0.18 < mask.mean() < 0.22
    again = holdout_mask(make_rows(20_000, seed=5).to_pandas(), 0.2)
    assert (mask == again).all()  # date as object or as datetime64: same split


@pytest.mark.parametrize("share", [0.0, 1.0, -0.1, 1.5])
def test_a_share_outside_zero_one_is_refused(share: float) -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        holdout_mask(frame([(1, "00601", 1.0)]), share)

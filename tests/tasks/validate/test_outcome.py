"""The validate step's pure pieces: the outcome from counts and thresholds, the schema check."""

from __future__ import annotations

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tasks.core.expectations import arrow_schema_problems, row_rules
from tasks.core.schema import CANONICAL_SCHEMA
from tasks.validate.outcome import (
    ValidationCounts,
    ValidationThresholds,
    decide_validation,
)

LIMITS = ValidationThresholds(
    warn_bad_row_share=0.01, max_bad_row_share=0.10, max_duplicate_share=0.05, min_rows=1
)


def counts(rows_in: int, bad: int = 0, dup: int = 0, **kw) -> ValidationCounts:
    by_rule = kw.pop("dropped_by_rule", {"price out of range": bad} if bad else {})
    if dup:
        by_rule = {**by_rule, "duplicate row": dup}
    return ValidationCounts(
        rows_in=rows_in,
        bad_rows=bad,
        duplicate_rows=dup,
        rows_dropped=bad + dup,
        dropped_by_rule=by_rule,
        **kw,
    )


def test_a_clean_batch_passes() -> None:
    verdict = decide_validation(counts(2300), LIMITS)
    assert (verdict.outcome, verdict.status) == ("pass", "curated")
    assert verdict.reasons == ["all 2,300 rows meet every expectation"]


def test_a_few_bad_rows_pass_and_are_named() -> None:
    verdict = decide_validation(counts(2300, bad=3, dup=1), LIMITS)
    assert verdict.outcome == "pass"
    assert verdict.reasons[0].startswith("4 of 2,300 rows dropped")
    assert "price out of range: 3 rows" in verdict.reasons
    assert "duplicate row: 1 row" in verdict.reasons


def test_bad_rows_above_the_warning_level_warn() -> None:
    verdict = decide_validation(counts(1000, bad=11), LIMITS)
    assert (verdict.outcome, verdict.status) == ("warn", "curated")
    assert "11 of 1,000 (1.10% > 1.00%)" in verdict.reasons[0]


@pytest.mark.parametrize(
    ("batch", "fragment"),
    [
        (counts(1000, bad=101), "too many bad rows: 101 of 1,000 (10.10% > 10.00%)"),
        (counts(1000, dup=51), "too many duplicate rows: 51 of 1,000 (5.10% > 5.00%)"),
        (counts(0), "too few rows: 0 < 1"),
        (counts(10, schema_problems=["column 'price' is string, not double"]), "schema: column"),
        (counts(10, failed_batch_checks=["something"]), "failed check: something"),
    ],
)
def test_batch_level_failures_quarantine(batch: ValidationCounts, fragment: str) -> None:
    verdict = decide_validation(batch, LIMITS)
    assert (verdict.outcome, verdict.status) == ("fail", "quarantined")
    assert any(fragment in reason for reason in verdict.reasons), verdict.reasons


def test_thresholds_at_the_boundary_do_not_cross() -> None:
    assert decide_validation(counts(1000, bad=10), LIMITS).outcome == "pass"  # 1% == warn
    assert decide_validation(counts(1000, bad=100), LIMITS).outcome == "warn"  # 10% == max
    assert decide_validation(counts(1000, dup=50), LIMITS).outcome == "pass"  # 5% == max
    assert decide_validation(counts(1, bad=0), LIMITS).outcome == "pass"  # 1 row == min


def test_an_empty_batch_with_no_minimum_passes_with_a_reason() -> None:
    limits = ValidationThresholds(0.01, 0.1, 0.05, min_rows=0)
    verdict = decide_validation(counts(0), limits)
    assert verdict.outcome == "pass"
    assert verdict.reasons == ["empty batch: 0 rows (minimum 0), nothing to check"]


def test_one_bad_row_of_one_is_a_fail() -> None:
    verdict = decide_validation(counts(1, bad=1), LIMITS)
    assert verdict.outcome == "fail"


def test_impossible_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="exceed"):
        decide_validation(counts(5, bad=6), LIMITS)
    with pytest.raises(ValueError, match=">= 0"):
        decide_validation(ValidationCounts(-1, 0, 0, 0), LIMITS)


shares = st.floats(min_value=0, max_value=1, allow_nan=False)


@settings(max_examples=300, deadline=None)
@given(
    rows=st.integers(min_value=0, max_value=10_000),
    bad_frac=shares,
    dup_frac=shares,
    warn=shares,
    max_bad=shares,
    max_dup=shares,
    min_rows=st.integers(min_value=0, max_value=100),
    schema=st.lists(
        st.sampled_from(["column 'bath' is missing", "column 'price' is string"]), max_size=2
    ),
)
def test_the_outcome_follows_the_thresholds(
    rows: int, bad_frac: float, dup_frac: float, warn: float, max_bad: float, max_dup: float,
    min_rows: int, schema: list[str],
) -> None:  # fmt: skip
    bad = int(rows * bad_frac)
    dup = min(rows - bad, int(rows * dup_frac))
    limits = ValidationThresholds(warn, max_bad, max_dup, min_rows)
    verdict = decide_validation(counts(rows, bad=bad, dup=dup, schema_problems=schema), limits)
    bad_share = bad / rows if rows else 0.0
    dup_share = dup / rows if rows else 0.0
    should_fail = bool(schema) or rows < min_rows or bad_share > max_bad or dup_share > max_dup
    assert verdict.reasons and all(isinstance(r, str) and r for r in verdict.reasons)
    assert (verdict.outcome == "fail") == should_fail
    assert verdict.status == ("quarantined" if should_fail else "curated")
    if not should_fail:
        assert verdict.outcome == ("warn" if bad_share > warn else "pass")


def test_the_schema_check_names_missing_and_mistyped_columns() -> None:
    assert arrow_schema_problems(CANONICAL_SCHEMA) == []
    schema = CANONICAL_SCHEMA.remove(CANONICAL_SCHEMA.get_field_index("bath"))
    schema = schema.set(schema.get_field_index("price"), pa.field("price", pa.string()))
    assert arrow_schema_problems(schema) == [
        "column 'price' is string, not double",
        "column 'bath' is missing",
    ]


def test_every_row_rule_has_a_distinct_label() -> None:
    labels = [rule.label for rule in row_rules()]
    assert len(labels) == len(set(labels))
    assert {"price out of range", "duplicate row", "zip code not 5 digits"} <= set(labels)

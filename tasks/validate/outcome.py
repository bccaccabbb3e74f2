"""The validate step's verdict on a batch, from counts and thresholds only (a pure function).

- ``fail`` (the batch is quarantined) when the batch breaks a batch-level expectation: a
  schema problem (a missing column, a column of the wrong type), fewer rows than
  ``min_rows``, a share of bad rows above ``max_bad_row_share`` or a share of duplicate rows
  above ``max_duplicate_share``;
- ``warn`` (curated, bad rows dropped) when the share of bad rows is above
  ``warn_bad_row_share``;
- ``pass`` (curated) otherwise; the few bad or duplicate rows are dropped all the same.

Shares are of ``rows_in``; an empty batch has shares of 0. A share exactly at a threshold
does not cross it ("above" means strictly greater). Every verdict carries at least one reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

Outcome = Literal["pass", "warn", "fail"]


@dataclass(frozen=True)
class ValidationThresholds:
    warn_bad_row_share: float
    max_bad_row_share: float
    max_duplicate_share: float
    min_rows: int


@dataclass(frozen=True)
class ValidationCounts:
    """What the suite counted in one batch."""

    rows_in: int
    bad_rows: int  # rows breaking at least one row-level rule other than "duplicate row"
    duplicate_rows: int  # exact copies of an earlier row
    rows_dropped: int  # rows breaking any row-level rule (bad or duplicate), each once
    dropped_by_rule: Mapping[str, int] = field(default_factory=dict)
    schema_problems: Sequence[str] = ()
    failed_batch_checks: Sequence[str] = ()  # other batch-level expectations that failed


@dataclass(frozen=True)
class ValidationVerdict:
    outcome: Outcome
    reasons: list[str]

    @property
    def status(self) -> Literal["curated", "quarantined"]:
        return "quarantined" if self.outcome == "fail" else "curated"


def _share(part: int, whole: int) -> float:
    return part / whole if whole > 0 else 0.0


def _pct(share: float) -> str:
    return f"{share * 100:.2f}%"


def decide_validation(counts: ValidationCounts, limits: ValidationThresholds) -> ValidationVerdict:
    """``pass``, ``warn`` or ``fail`` for a batch, with the reasons a person can read."""
    for name in ("rows_in", "bad_rows", "duplicate_rows", "rows_dropped"):
        if getattr(counts, name) < 0:
            raise ValueError(f"{name} must be >= 0, got {getattr(counts, name)}")
    if counts.bad_rows > counts.rows_in or counts.duplicate_rows > counts.rows_in:
        raise ValueError(
            f"bad ({counts.bad_rows}) or duplicate ({counts.duplicate_rows}) rows exceed the "
            f"{counts.rows_in} rows of the batch"
        )
    bad_share = _share(counts.bad_rows, counts.rows_in)
    dup_share = _share(counts.duplicate_rows, counts.rows_in)
    failures: list[str] = [f"schema: {problem}" for problem in counts.schema_problems]
    if counts.rows_in < limits.min_rows:
        failures.append(f"too few rows: {counts.rows_in:,} < {limits.min_rows:,}")
    if bad_share > limits.max_bad_row_share:
        failures.append(
            f"too many bad rows: {counts.bad_rows:,} of {counts.rows_in:,} "
            f"({_pct(bad_share)} > {_pct(limits.max_bad_row_share)})"
        )
    if dup_share > limits.max_duplicate_share:
        failures.append(
            f"too many duplicate rows: {counts.duplicate_rows:,} of {counts.rows_in:,} "
            f"({_pct(dup_share)} > {_pct(limits.max_duplicate_share)})"
        )
    failures.extend(f"failed check: {check}" for check in counts.failed_batch_checks)
    if failures:
        return ValidationVerdict("fail", failures + _dropped_detail(counts))

    if counts.rows_in == 0:
        return ValidationVerdict(
            "pass", [f"empty batch: 0 rows (minimum {limits.min_rows:,}), nothing to check"]
        )
    dropped = _dropped_detail(counts)
    if bad_share > limits.warn_bad_row_share:
        head = (
            f"bad rows above the warning level: {counts.bad_rows:,} of {counts.rows_in:,} "
            f"({_pct(bad_share)} > {_pct(limits.warn_bad_row_share)}), dropped"
        )
        return ValidationVerdict("warn", [head, *dropped])
    if counts.rows_dropped:
        head = (
            f"{counts.rows_dropped:,} of {counts.rows_in:,} rows dropped "
            f"(bad {_pct(bad_share)} <= {_pct(limits.warn_bad_row_share)}, "
            f"duplicates {_pct(dup_share)} <= {_pct(limits.max_duplicate_share)})"
        )
        return ValidationVerdict("pass", [head, *dropped])
    if counts.rows_in == 1:
        return ValidationVerdict("pass", ["the batch's one row meets every expectation"])
    return ValidationVerdict("pass", [f"all {counts.rows_in:,} rows meet every expectation"])


def _dropped_detail(counts: ValidationCounts) -> list[str]:
    return [
        f"{rule}: {count:,} row{'' if count == 1 else 's'}"
        for rule, count in sorted(counts.dropped_by_rule.items(), key=lambda kv: (-kv[1], kv[0]))
        if count
    ]

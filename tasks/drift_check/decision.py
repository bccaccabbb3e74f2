"""Whether a batch justifies training, and why: a pure function of measured facts.

In order, the first rule that applies decides:

1. a quarantined batch: ``skip`` (its quarantine reason);
2. fewer curated rows than ``min_train_rows``: ``skip`` - even the first model waits for
   enough rows;
3. no model in production: ``train`` ("first model");
4. drift of the target (Wasserstein distance of log price, normed, above
   ``target_threshold``), a share of drifted columns at or above ``share_threshold``, or
   status/state values the reference never had (on at least ``new_value_min_share`` of the
   batch's rows): ``train``, every such finding a reason;
5. otherwise ``skip`` ("no drift").

Retraining is never justified by the mere arrival of data or by the calendar: a ``train``
always carries a first-model or a drift reason. A column whose drift could not be measured
(no values on one side) is named and left out of the share; if the target could not be
measured the function raises rather than guess.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from tasks.core.drift import ColumnDrift  # the measure's type lives with the measuring code

Decision = Literal["train", "skip"]
TARGET_LABEL = "price"


@dataclass(frozen=True)
class DriftMeasures:
    """What Evidently (and the category comparison) found between the batch and the reference."""

    columns: Sequence[ColumnDrift]
    target_column: str  # which of ``columns`` is the target (e.g. "log_price")
    new_values: Mapping[str, Mapping[str, int]] = field(
        default_factory=dict
    )  # col -> value -> rows

    def target(self) -> ColumnDrift:
        for column in self.columns:
            if column.column == self.target_column:
                return column
        raise ValueError(f"the drift measures have no target column {self.target_column!r}")

    @property
    def measured(self) -> list[ColumnDrift]:
        return [c for c in self.columns if c.measured]

    @property
    def drifted_columns(self) -> list[str]:
        return [c.column for c in self.columns if c.drifted]

    @property
    def drift_share(self) -> float:
        measured = self.measured
        return len(self.drifted_columns) / len(measured) if measured else 0.0


@dataclass(frozen=True)
class DriftFacts:
    batch_rows: int  # curated rows of the batch
    states: Sequence[str] = ()  # distinct states of the batch
    quarantined: bool = False
    quarantine_reasons: Sequence[str] = ()
    has_champion: bool = False
    measures: DriftMeasures | None = None


@dataclass(frozen=True)
class DriftThresholds:
    share: float
    target: float
    min_train_rows: int
    new_value_min_share: float


@dataclass(frozen=True)
class DriftVerdict:
    decision: Decision
    reasons: list[str]
    grounds: tuple[str, ...] = ()  # first_model | target_drift | column_share | new_values


def _fmt(x: float) -> str:
    return f"{x:.2f}"


def _target_name(column: str) -> str:
    return TARGET_LABEL if "price" in column else column


def _observations(
    measures: DriftMeasures, limits: DriftThresholds, rows: int
) -> tuple[list[tuple[str, str]], list[str]]:
    """(grounds for training with their reasons, notes) found in ``measures``."""
    target = measures.target()
    if not target.measured:
        raise ValueError(
            f"the drift of the target ({target.column}) could not be measured: no decision"
        )
    grounds: list[tuple[str, str]] = []
    notes: list[str] = []
    name = _target_name(target.column)
    if target.score > limits.target:
        grounds.append(
            (
                "target_drift",
                f"{name} drifted: Wasserstein distance ({target.column}, normed) "
                f"{_fmt(target.score)} > {_fmt(limits.target)}",
            )
        )
    drifted = measures.drifted_columns
    measured = measures.measured
    share = measures.drift_share
    if measured and share >= limits.share:
        grounds.append(
            (
                "column_share",
                f"{len(drifted)} of {len(measured)} columns drifted (share {_fmt(share)} >= "
                f"{_fmt(limits.share)}): {', '.join(drifted)}",
            )
        )
    elif drifted:
        notes.append(
            f"{len(drifted)} of {len(measured)} columns drifted (share {_fmt(share)} < "
            f"{_fmt(limits.share)}): {', '.join(drifted)}"
        )
    unmeasured = [c.column for c in measures.columns if not c.measured]
    if unmeasured:
        notes.append(f"drift not measurable (no values on one side): {', '.join(unmeasured)}")
    for column, values in sorted(measures.new_values.items()):
        present = {v: n for v, n in values.items() if n > 0}
        if not present:
            continue
        count = sum(present.values())
        share_rows = count / rows if rows > 0 else 0.0
        listed = ", ".join(sorted(present))
        if share_rows >= limits.new_value_min_share and count > 0:
            grounds.append(
                (
                    "new_values",
                    f"new {column} values not in the reference: {listed} "
                    f"({count:,} rows, {share_rows:.1%} of the batch)",
                )
            )
        else:
            notes.append(
                f"new {column} values not in the reference, too few to matter: {listed} "
                f"({count:,} rows, {share_rows:.2%} < {limits.new_value_min_share:.1%})"
            )
    return grounds, notes


def decide_drift(facts: DriftFacts, limits: DriftThresholds) -> DriftVerdict:
    """``train`` or ``skip`` for the batch, with reasons a person can read (never empty)."""
    if facts.batch_rows < 0:
        raise ValueError(f"batch_rows must be >= 0, got {facts.batch_rows}")
    if facts.quarantined:
        why = "; ".join(facts.quarantine_reasons) or "no reason recorded"
        return DriftVerdict("skip", [f"batch quarantined: {why}"])

    if facts.batch_rows < limits.min_train_rows:
        where = f" from one state ({facts.states[0]})" if len(facts.states) == 1 else ""
        reasons = [
            f"{facts.batch_rows:,} rows{where}: below the minimum volume "
            f"({limits.min_train_rows:,})"
        ]
        if facts.has_champion and facts.measures is not None and facts.batch_rows > 0:
            grounds, notes = _observations(facts.measures, limits, facts.batch_rows)
            reasons += [f"not acted on: {text}" for _, text in grounds]
            reasons += notes
        return DriftVerdict("skip", reasons)

    if not facts.has_champion:
        return DriftVerdict(
            "train",
            [
                "first model: no model in production",
                f"{facts.batch_rows:,} rows >= the minimum volume ({limits.min_train_rows:,})",
            ],
            ("first_model",),
        )
    if facts.measures is None:
        raise ValueError("a model is in production but no drift was measured: no decision")
    grounds, notes = _observations(facts.measures, limits, facts.batch_rows)
    if grounds:
        return DriftVerdict(
            "train", [text for _, text in grounds] + notes, tuple(g for g, _ in grounds)
        )
    target = facts.measures.target()
    head = (
        f"no drift: share {_fmt(facts.measures.drift_share)} < {_fmt(limits.share)}, "
        f"{_target_name(target.column)} distance {_fmt(target.score)} <= {_fmt(limits.target)}"
    )
    return DriftVerdict("skip", [head, *notes])

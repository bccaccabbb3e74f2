"""Whether a batch justifies training, and why: a pure function of measured facts.

In order, the first rule that applies decides:

1. a quarantined batch: ``skip`` (its quarantine reason);
2. fewer curated rows than ``min_train_rows``: ``skip`` - even the first model waits for
   enough rows;
3. no model in production: ``train`` ("first model");
4. drift of the target (Wasserstein distance of log price, normed, above
   ``target_threshold``), a share of drifted columns at or above ``share_threshold``,
   status/state values the reference never had (on at least ``new_value_min_share`` of the
   batch's rows), or live drift (below): ``train``, every such finding a reason;
5. otherwise ``skip`` ("no drift").

Live drift. The latest window of live traffic that ``tasks.monitor`` closed
(:class:`LiveWindow`) is one more fact. It says how the requests differ from the data the
production model was trained on, so it counts only when it compared against the *current*
production version; a window against another version is a note ("live window 12 compared
against v2, production is v3: not used"). A ``drifted`` window is a ground of its own,
``live_drift`` ("users now ask differently: live drift share 0.60 since v3 was trained
(window 12, 4,812 requests): state 0.41, house_size 0.30", then what else the window found,
e.g. "users now ask about Vermont: 41% of requests, 1% of the training data"): users ask
about other houses than the model learnt, so the labelled batch at hand is worth training on
even if it looks like the reference. A ``stable`` or ``too_few_rows`` window is a note. Live
drift never overrides rules 1 and 2: a quarantined or too small batch still skips, and the
drifted window is listed as "not acted on: ...". A window stays a reason for every batch until
production changes or a newer window replaces it: a rejected challenger does not make the
drift go away. The verdict names the window it mentioned (``live_window_id``) so the step can
record that a batch took it into account.

Retraining is never justified by the mere arrival of data or by the calendar: a ``train``
always carries a first-model or a drift reason (of the batch or of live traffic). A column whose drift could not be measured
(no values on one side) is named and left out of the share; if the target could not be
measured the function raises rather than guess.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from tasks.core.drift import ColumnDrift  # the measure's type lives with the measuring code

Decision = Literal["train", "skip"]
TARGET_LABEL = "price"
#: the decisions of a monitor window (``tasks.core.ledger_tables.WINDOW_DECISIONS``)
WindowDecision = Literal["stable", "drifted", "too_few_rows"]


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
class LiveWindow:
    """The latest window of live traffic the monitor closed (a ``monitor_windows`` row)."""

    window_id: int
    decision: WindowDecision
    drift_share: float | None  # None when the window had too few rows to measure
    rows: int  # requests (logged rows) in the window
    model_version: str | None  # the production version whose training data it compared with
    window_end: datetime | None = None
    #: drifted input features with their scores, the most drifted first
    top_features: Sequence[tuple[str, float]] = ()
    reasons: Sequence[str] = ()


@dataclass(frozen=True)
class DriftFacts:
    batch_rows: int  # curated rows of the batch
    states: Sequence[str] = ()  # distinct states of the batch
    quarantined: bool = False
    quarantine_reasons: Sequence[str] = ()
    has_champion: bool = False
    measures: DriftMeasures | None = None
    champion_version: str | None = None  # the production version, when there is one
    live: LiveWindow | None = None  # the latest live window, if the monitor closed one


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
    #: first_model | target_drift | column_share | new_values | live_drift
    grounds: tuple[str, ...] = ()
    live_window_id: int | None = None  # the live window the reasons mention (ground or note)


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


def _share(share: float | None) -> str:
    return "n/a" if share is None else _fmt(share)


def _live_drift_text(live: LiveWindow) -> str:
    features = (
        ", ".join(f"{name} {score:.2f}" for name, score in live.top_features) or "no feature named"
    )
    text = (
        f"users now ask differently: live drift share {_share(live.drift_share)} since "
        f"v{live.model_version} was trained (window {live.window_id}, {live.rows:,} requests): "
        f"{features}"
    )
    # the window's own reasons, but its share line, which the text above already says
    extra = [r for r in live.reasons if not r.startswith("live drift share")]
    return "; ".join([text, *extra])


def _live_observation(
    live: LiveWindow, champion_version: str | None
) -> tuple[list[tuple[str, str]], list[str]]:
    """(the live_drift ground with its reason, or nothing; notes) of the latest live window."""
    if champion_version is None:
        return [], [f"live window {live.window_id}: not used, no model in production"]
    if live.model_version != champion_version:
        return [], [
            f"live window {live.window_id} compared against v{live.model_version}, production "
            f"is v{champion_version}: not used"
        ]
    if live.decision == "drifted":
        return [("live_drift", _live_drift_text(live))], []
    if live.decision == "stable":
        return [], [
            f"live traffic stable: window {live.window_id} ({live.rows:,} requests, drift share "
            f"{_share(live.drift_share)} against v{live.model_version})"
        ]
    return [], [
        f"live window {live.window_id} had too few requests to judge ({live.rows:,}): not used"
    ]


def decide_drift(facts: DriftFacts, limits: DriftThresholds) -> DriftVerdict:
    """``train`` or ``skip`` for the batch, with reasons a person can read (never empty)."""
    if facts.batch_rows < 0:
        raise ValueError(f"batch_rows must be >= 0, got {facts.batch_rows}")
    live = facts.live
    live_id = live.window_id if live is not None else None
    if facts.quarantined:
        why = "; ".join(facts.quarantine_reasons) or "no reason recorded"
        reasons = [f"batch quarantined: {why}"]
        if live is not None and live.decision == "drifted":
            # the registry is not asked for a quarantined batch: the window is named as it is
            reasons.append(
                f"not acted on: live window {live.window_id} drifted (share "
                f"{_share(live.drift_share)} against v{live.model_version}, {live.rows:,} "
                "requests)"
            )
        return DriftVerdict("skip", reasons, live_window_id=live_id)
    live_grounds, live_notes = (
        _live_observation(live, facts.champion_version if facts.has_champion else None)
        if live is not None
        else ([], [])
    )

    if facts.batch_rows < limits.min_train_rows:
        where = f" from one state ({facts.states[0]})" if len(facts.states) == 1 else ""
        reasons = [
            f"{facts.batch_rows:,} rows{where}: below the minimum volume "
            f"({limits.min_train_rows:,})"
        ]
        grounds, notes = [], []
        if facts.has_champion and facts.measures is not None and facts.batch_rows > 0:
            grounds, notes = _observations(facts.measures, limits, facts.batch_rows)
        reasons += [f"not acted on: {text}" for _, text in grounds + live_grounds]
        reasons += notes + live_notes
        return DriftVerdict("skip", reasons, live_window_id=live_id)

    if not facts.has_champion:
        return DriftVerdict(
            "train",
            [
                "first model: no model in production",
                f"{facts.batch_rows:,} rows >= the minimum volume ({limits.min_train_rows:,})",
                *live_notes,
            ],
            ("first_model",),
            live_id,
        )
    if facts.measures is None:
        raise ValueError("a model is in production but no drift was measured: no decision")
    grounds, notes = _observations(facts.measures, limits, facts.batch_rows)
    grounds += live_grounds
    notes += live_notes
    if grounds:
        return DriftVerdict(
            "train", [text for _, text in grounds] + notes, tuple(g for g, _ in grounds), live_id
        )
    target = facts.measures.target()
    head = (
        f"no drift: share {_fmt(facts.measures.drift_share)} < {_fmt(limits.share)}, "
        f"{_target_name(target.column)} distance {_fmt(target.score)} <= {_fmt(limits.target)}"
    )
    return DriftVerdict("skip", [head, *notes], live_window_id=live_id)

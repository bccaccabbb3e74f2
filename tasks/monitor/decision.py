"""What a window of live traffic says, and why: a pure function of measured facts.

In order, the first rule that applies decides:

1. fewer logged requests than ``min_rows``: ``too_few_rows`` - the window does not consume
   its rows, they wait for the next window ("37 requests since <t>: below the minimum (200)
   to measure drift");
2. a share of drifted input features at or above ``share``: ``drifted`` - the features
   named with their method and score, strongest first;
3. otherwise ``stable``.

Either measured decision also names the status/state values whose share of live requests
exceeds their share of the training data by at least ``value_shift`` ("users now ask about
Vermont: 62% of requests, 0% of the training data"), and says when Evidently saw a seeded
sample rather than every row. Reasons are never empty.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from tasks.core.drift import ColumnDrift

WindowDecision = Literal["stable", "drifted", "too_few_rows"]

METHOD_NAMES = {"wasserstein": "Wasserstein", "jensenshannon": "Jensen-Shannon"}


@dataclass(frozen=True)
class ValueShare:
    """One status/state value: its share of the window's requests and of the training data."""

    column: str
    value: str
    live: float
    reference: float

    @property
    def shift(self) -> float:
        return self.live - self.reference


@dataclass(frozen=True)
class WindowFacts:
    rows: int  # logged requests (rows) in the window
    since: datetime | None = None  # the first one's predicted_at
    model_version: str | None = None  # the production version compared with
    columns: Sequence[ColumnDrift] = ()
    values: Sequence[ValueShare] = ()
    sampled_rows: int | None = None  # rows Evidently saw, when fewer than ``rows``


@dataclass(frozen=True)
class MonitorLimits:
    min_rows: int
    share: float
    value_shift: float


@dataclass(frozen=True)
class WindowVerdict:
    decision: WindowDecision
    reasons: list[str]
    drift_share: float | None
    drifted_features: list[str]

    @property
    def consumed(self) -> bool:
        """The window read its rows (the next one starts after them)."""
        return self.decision != "too_few_rows"


def _when(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC") if at is not None else "the last window"


def _version(version: str | None) -> str:
    return f"v{version}" if version else "the production model"


def _feature(column: ColumnDrift) -> str:
    method = METHOD_NAMES.get(column.method, column.method)
    return f"{column.column} ({method} {column.score:.2f})"


def _value(share: ValueShare) -> str:
    live, ref = f"{share.live:.0%}", f"{share.reference:.0%}"
    if share.column == "state":
        return f"users now ask about {share.value}: {live} of requests, {ref} of the training data"
    return f"{share.column} {share.value}: {live} of requests, {ref} of the training data"


def decide_window(facts: WindowFacts, limits: MonitorLimits) -> WindowVerdict:
    """``stable``, ``drifted`` or ``too_few_rows`` for the window, with readable reasons."""
    if facts.rows < 0:
        raise ValueError(f"rows must be >= 0, got {facts.rows}")
    if facts.rows < limits.min_rows:
        return WindowVerdict(
            "too_few_rows",
            [
                f"{facts.rows:,} requests since {_when(facts.since)}: below the minimum "
                f"({limits.min_rows:,}) to measure drift"
            ],
            None,
            [],
        )
    measured = [c for c in facts.columns if c.measured]
    if not measured:
        raise ValueError(
            f"{facts.rows:,} requests but no feature's drift could be measured: no decision"
        )
    drifted = sorted((c for c in measured if c.drifted), key=lambda c: -c.score)
    share = len(drifted) / len(measured)
    against = f"since {_version(facts.model_version)} was trained"
    if share >= limits.share:
        head = f"live drift share {share:.2f} >= {limits.share:.2f} {against}: " + ", ".join(
            _feature(c) for c in drifted
        )
        decision: WindowDecision = "drifted"
    else:
        named = f": {', '.join(_feature(c) for c in drifted)}" if drifted else ""
        head = (
            f"no live drift: share {share:.2f} < {limits.share:.2f} {against} "
            f"({len(drifted)} of {len(measured)} features drifted{named})"
        )
        decision = "stable"
    reasons = [head]
    shifted = sorted(
        (v for v in facts.values if v.shift >= limits.value_shift), key=lambda v: -v.shift
    )
    reasons += [_value(v) for v in shifted]
    unmeasured = [c.column for c in facts.columns if not c.measured]
    if unmeasured:
        reasons.append(f"drift not measurable (no values on one side): {', '.join(unmeasured)}")
    if facts.sampled_rows is not None and facts.sampled_rows < facts.rows:
        reasons.append(
            f"measured on a seeded sample of {facts.sampled_rows:,} of {facts.rows:,} requests"
        )
    return WindowVerdict(decision, reasons, share, [c.column for c in drifted])

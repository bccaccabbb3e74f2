"""The shadow comparison in promote's reasons, and the minimum shadow period. Pure functions.

Serving's shadow scored live requests with the challenger beside the champion's answers
(``shadow_predictions``). Promote says how far apart they were: the requests compared, the
median absolute difference of the log10 prices, and the share of predictions more than 10%
apart (relative to the champion's price). That is information, not a verdict: live traffic
has no price, so it cannot say which of the two is right.

``PROMOTE_MIN_SHADOW_REQUESTS`` (0: not required) makes it a condition: a challenger that
the holdout rule would promote is *held* until the shadow has compared at least that many
live requests. A held promotion is recorded (``promoted`` false, the first reason starting
with :data:`HELD`) and is not final: re-running promote for the batch evaluates it again. A
challenger the holdout rule rejects is rejected, however long its shadow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from tasks.core.shadow_ledger import APART_FACTOR, HELD

__all__ = ["APART", "HELD", "ShadowComparison", "compare", "hold", "reason"]

#: two prices are "apart" when one exceeds the other by more than this share (the Monitoring
#: page's rule too: :data:`tasks.core.shadow_ledger.APART_FACTOR`)
APART = APART_FACTOR - 1.0


@dataclass(frozen=True)
class ShadowComparison:
    """How the challenger's shadow prices compare with the champion's live answers."""

    requests: int
    predictions: int
    since: datetime | None = None
    median_abs_log10: float | None = None
    share_apart: float | None = None
    unpriced: int = 0  # predictions with a price <= 0 (no log): left out of the two figures


def compare(
    request_ids: Sequence[str],
    production: Sequence[float],
    challenger: Sequence[float],
    since: datetime | None = None,
) -> ShadowComparison:
    """The comparison of paired prices (one pair per live record the shadow scored)."""
    if not (len(request_ids) == len(production) == len(challenger)):
        raise ValueError("shadow pairs of unequal lengths: one request id and two prices each")
    if not production:
        return ShadowComparison(0, 0)
    p = np.asarray(production, dtype=np.float64)
    c = np.asarray(challenger, dtype=np.float64)
    priced = (p > 0) & (c > 0) & np.isfinite(p) & np.isfinite(c)
    median = share = None
    if priced.any():
        median = float(np.median(np.abs(np.log10(c[priced]) - np.log10(p[priced]))))
        ratio = c[priced] / p[priced]
        share = float(np.mean(np.maximum(ratio, 1.0 / ratio) > APART_FACTOR))
    return ShadowComparison(
        requests=len(set(request_ids)),
        predictions=len(production),
        since=since,
        median_abs_log10=median,
        share_apart=share,
        unpriced=int((~priced).sum()),
    )


def _when(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC") if at is not None else "an unknown time"


def reason(comparison: ShadowComparison, challenger_version: str, champion_version: str) -> str:
    """One line for promote's reasons (also when the shadow compared nothing)."""
    if comparison.requests == 0:
        return (
            f"shadow: no live request compared v{challenger_version} with production "
            f"v{champion_version} (serving's SERVING_SHADOW is off, or no traffic since train)"
        )
    counted = f"{comparison.requests:,} live requests"
    if comparison.predictions != comparison.requests:
        counted += f" ({comparison.predictions:,} predictions)"
    text = f"shadow: {counted} since {_when(comparison.since)}"
    if comparison.median_abs_log10 is None or comparison.share_apart is None:
        text += "; no positive prices to compare"
    else:
        text += (
            f"; median |Δ log10 price| {comparison.median_abs_log10:.3f}; "
            f"{comparison.share_apart:.1%} more than {APART:.0%} apart"
        )
    if comparison.unpriced:
        text += f" ({comparison.unpriced:,} predictions without a positive price left out)"
    return text


def hold(
    promote: bool,
    reasons: list[str],
    comparison: ShadowComparison | None,
    *,
    min_requests: int,
    batch_id: int,
) -> tuple[bool, bool, list[str]]:
    """(promote, held, reasons) once the minimum shadow period is applied.

    ``comparison`` is None when there is no champion to compare with (the first model) or
    the challenger already is production: nothing to hold for.
    """
    if min_requests < 0:
        raise ValueError("PROMOTE_MIN_SHADOW_REQUESTS must not be negative")
    if not promote or comparison is None or min_requests == 0:
        return promote, False, reasons
    if comparison.requests >= min_requests:
        return True, False, reasons
    held = (
        f"{HELD} {comparison.requests:,} of {min_requests:,} shadow requests "
        f"(PROMOTE_MIN_SHADOW_REQUESTS); the holdout rule would promote; re-run promote for "
        f"batch {batch_id} later"
    )
    return False, True, [held, *reasons]

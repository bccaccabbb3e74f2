"""The rows a training learns from and is judged on.

Reads the curated batches, drops rows without a usable price, splits each batch by the
deterministic holdout (:mod:`tasks.core.holdout`: the rows promote rebuilds to compare models), and
caps the training rows (seeded). The search validates on a band of property hashes just above
the holdout's (:func:`inner_validation_mask`): never the holdout, and a property is never on
both sides of the inner split.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from tasks.core import holdout, model
from tasks.core.storage import ObjectStore
from tasks.core.training_ledger import CuratedBatch, read_curated

#: share of the training properties the search validates on (never the holdout)
INNER_VALIDATION_SHARE = 0.15


@dataclass
class TrainingData:
    """Training rows (capped), holdout rows (all of them), and what they came from."""

    train: pd.DataFrame
    holdout: pd.DataFrame
    batches: list[CuratedBatch]
    rows_read: int
    rows_without_price: int
    rows_train_before_cap: int
    scores: np.ndarray = field(repr=False, default_factory=lambda: np.empty(0))

    @property
    def batch_ids(self) -> list[int]:
        return [b.batch_id for b in self.batches]

    @cached_property
    def x_train(self) -> pd.DataFrame:
        """The model's input columns of the training rows."""
        return model.feature_frame(self.train)

    @cached_property
    def y_train(self) -> np.ndarray:
        """The training prices, in dollars."""
        return model.target(self.train)


def load_training_data(
    store: ObjectStore, batches: Sequence[CuratedBatch], share: float, max_rows: int, seed: int
) -> TrainingData:
    """Read the curated batches, split each by the holdout, cap the training rows (seeded)."""
    train_parts: list[pd.DataFrame] = []
    score_parts: list[np.ndarray] = []
    holdout_parts: list[pd.DataFrame] = []
    rows_read = rows_without_price = 0
    for batch in batches:
        frame = read_curated(store, batch)
        rows_read += len(frame)
        priced = pd.to_numeric(frame["price"], errors="coerce")
        usable = priced.notna() & (priced > 0)
        rows_without_price += int((~usable).sum())
        frame = frame.loc[usable]
        scores = holdout.holdout_scores(frame)
        in_holdout = scores < share
        holdout_parts.append(frame.loc[in_holdout])
        train_parts.append(frame.loc[~in_holdout])
        score_parts.append(scores[~in_holdout])
        del frame
    train = pd.concat(train_parts, ignore_index=True) if train_parts else pd.DataFrame()
    scores = np.concatenate(score_parts) if score_parts else np.empty(0)
    hold = pd.concat(holdout_parts, ignore_index=True) if holdout_parts else pd.DataFrame()
    before_cap = len(train)
    if len(train) > max_rows:
        keep = np.sort(np.random.default_rng(seed).choice(len(train), max_rows, replace=False))
        train, scores = train.iloc[keep].reset_index(drop=True), scores[keep]
    return TrainingData(
        train=train,
        holdout=hold,
        batches=list(batches),
        rows_read=rows_read,
        rows_without_price=rows_without_price,
        rows_train_before_cap=before_cap,
        scores=scores,
    )


def inner_validation_mask(scores: np.ndarray, share: float) -> np.ndarray:
    """Training rows the search validates on: a band of property hashes above the holdout's."""
    return scores < share + (1.0 - share) * INNER_VALIDATION_SHARE

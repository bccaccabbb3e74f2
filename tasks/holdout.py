"""The deterministic holdout: a property is in the holdout or in training, always.

A row's side of the split depends only on the property it describes (street + zip_code),
never on the batch it came in, the seed, or the other rows. So a property that appears in
batch 1 and again in batch 5 lands on the same side both times (no leakage between models
trained on different windows), and ``promote`` rebuilds exactly the rows ``train`` held out.
A row without a street or zip code falls back to a hash of the whole canonical row.

The hash is BLAKE2b (stdlib, stable across Python, pandas and platform versions).
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from tasks.schema import COLUMNS

_SALT = b"realtor-holdout-v1"
_SCALE = float(2**64)


def _row_text(frame: pd.DataFrame) -> pd.Series:
    """Every canonical column of each row as one string (nulls spelled the same way)."""
    parts = [
        frame[name].astype("string").fillna("<null>")
        if name in frame
        else pd.Series("<absent>", index=frame.index)
        for name in COLUMNS
    ]
    text = parts[0].astype(str)
    for part in parts[1:]:
        text = text + "|" + part.astype(str)
    return "row|" + text


def _property_text(frame: pd.DataFrame) -> pd.Series:
    """``property|<street>|<zip>`` where both are known, else the whole row's text."""
    if frame.empty:
        return pd.Series([], dtype=object, index=frame.index)
    street = frame["street"] if "street" in frame else pd.Series(pd.NA, index=frame.index)
    zip_code = frame["zip_code"] if "zip_code" in frame else pd.Series(pd.NA, index=frame.index)
    known = street.notna() & zip_code.notna()
    text = pd.Series("", index=frame.index, dtype=object)
    if known.any():
        street_text = pd.to_numeric(street[known], errors="coerce").astype("Int64").astype(str)
        text[known] = "property|" + street_text + "|" + zip_code[known].astype(str)
    if (~known).any():
        text[~known] = _row_text(frame.loc[~known])
    return text


def holdout_scores(frame: pd.DataFrame) -> np.ndarray:
    """A number in [0, 1) per row, a pure function of the row's property (see module doc)."""
    keys = _property_text(frame)
    digests = b"".join(
        hashlib.blake2b(key.encode(), digest_size=8, key=_SALT).digest() for key in keys
    )
    return np.frombuffer(digests, dtype=">u8").astype(np.float64) / _SCALE


def holdout_mask(frame: pd.DataFrame, share: float) -> np.ndarray:
    """True for the rows in the holdout (about ``share`` of the properties)."""
    if not 0.0 < share < 1.0:
        raise ValueError(f"holdout share must be between 0 and 1 (exclusive), got {share}")
    return holdout_scores(frame) < share


def split_holdout(frame: pd.DataFrame, share: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(training rows, holdout rows) of ``frame``; the same rows every time."""
    mask = holdout_mask(frame, share)
    return frame.loc[~mask], frame.loc[mask]

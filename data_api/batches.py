"""Encoded batches: generate once, encode once, keep the last few bodies (bounded LRU)."""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

import pandas as pd

from data_api.scenarios import build_frame

ENCODE_CHUNK_ROWS = 50_000


@dataclass(frozen=True)
class EncodedBatch:
    """One response body, ready to send."""

    batch_number: int
    body: bytes
    rows: int
    seconds: float  # time it took to generate and encode (0 when served from the cache)
    cached: bool


def encode_body(group_number: int, day: str, batch_number: int, frame: pd.DataFrame) -> bytes:
    """``{"group_number", "day", "batch_number", "data": [records]}`` as compact ASCII JSON.

    NaN and None become ``null`` (pandas' encoder never writes the ``NaN`` token).
    """
    head = json.dumps(
        {"group_number": group_number, "day": day, "batch_number": batch_number},
        separators=(",", ":"),
    )
    parts = [head[:-1].encode("ascii"), b',"data":[']
    for start in range(0, len(frame), ENCODE_CHUNK_ROWS):  # chunks keep the peak memory low
        chunk = frame.iloc[start : start + ENCODE_CHUNK_ROWS]
        records = chunk.to_json(orient="records", double_precision=10).encode("ascii")
        if start:
            parts.append(b",")
        parts.append(records[1:-1])  # without the chunk's own [ and ]
    parts.append(b"]}")
    return b"".join(parts)


class BatchStore:
    """Get-or-build the encoded body of a batch; one generation at a time (2 cores, frugal)."""

    def __init__(self, seed: int, scale: float, capacity: int = 2) -> None:
        self.seed = seed
        self.scale = scale
        self.capacity = capacity
        self._cache: OrderedDict[tuple[int, str, int, int, int], tuple[bytes, int]] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._build_lock = threading.Lock()

    def _lookup(self, key: tuple[int, str, int, int, int]) -> tuple[bytes, int] | None:
        with self._cache_lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
            return hit

    def get(
        self,
        group_number: int,
        day: str,
        batch_number: int,
        *,
        served_as: int | None = None,
        sample: int = 0,
    ) -> EncodedBatch:
        """Scenario ``batch_number`` (1-based), labelled ``served_as`` (default: the same).

        ``sample`` > 0 draws another random sample of the same scenario (the course's time
        window resamples under one batch_number); sample 0 is the deterministic batch.
        """
        label = batch_number if served_as is None else served_as
        key = (group_number, day, batch_number, label, sample)
        hit = self._lookup(key)
        if hit is not None:
            return EncodedBatch(label, hit[0], hit[1], 0.0, cached=True)
        with self._build_lock:
            hit = self._lookup(key)  # built by a concurrent request meanwhile
            if hit is not None:
                return EncodedBatch(label, hit[0], hit[1], 0.0, cached=True)
            started = time.perf_counter()
            drawn_for = day if sample == 0 else f"{day}#sample-{sample}"
            frame = build_frame(self.seed, self.scale, group_number, drawn_for, batch_number)
            body = encode_body(group_number, day, label, frame)
            rows = len(frame)
            del frame
            seconds = time.perf_counter() - started
            if self.capacity > 0:
                with self._cache_lock:
                    self._cache[key] = (body, rows)
                    while len(self._cache) > self.capacity:
                        self._cache.popitem(last=False)
        return EncodedBatch(label, body, rows, seconds, cached=False)

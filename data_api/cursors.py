"""Per (group_number, day) cursors, in memory: how many batches were served, and when."""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass
class Cursor:
    served: int = 0  # batches served so far; the next one is served + 1
    advanced_at: float | None = None  # time.monotonic() of the last advance
    samples: int = 0  # answers inside the current window after the first (resample mode)


class CursorStore:
    """A dict of cursors; each cursor has its own lock, held while one request uses it."""

    def __init__(self) -> None:
        self._cursors: dict[tuple[int, str], Cursor] = {}
        self._locks: dict[tuple[int, str], threading.Lock] = {}
        self._guard = threading.Lock()

    def lock(self, key: tuple[int, str]) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def get(self, key: tuple[int, str]) -> Cursor:
        """The cursor of ``key`` (call with its lock held)."""
        with self._guard:
            return self._cursors.setdefault(key, Cursor())

    def reset(self, key: tuple[int, str]) -> None:
        with self.lock(key), self._guard:
            self._cursors[key] = Cursor()

"""Client threads hammering /predict, recording every answer (for the under-load tests)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import httpx

from serving.records import EXAMPLE_RECORD

RECORD = EXAMPLE_RECORD


@dataclass(frozen=True)
class Answer:
    thread: int
    sent_at: float  # time.monotonic()
    seconds: float
    status: int | None  # None: no answer (connection error, timeout)
    version: str | None
    error: str | None = None


@dataclass
class Hammer:
    """``threads`` keep-alive clients posting one record each in a loop until ``stop()``."""

    url: str
    threads: int = 4
    timeout: float = 10.0
    answers: list[Answer] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._workers = [
            threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(self.threads)
        ]

    def __enter__(self) -> Hammer:
        for worker in self._workers:
            worker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(self.timeout + 5)

    def _run(self, index: int) -> None:
        with httpx.Client(base_url=self.url, timeout=self.timeout) as client:
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    response = client.post("/predict", json=RECORD)
                    version = response.json().get("model_version") if response.is_success else None
                    answer = Answer(
                        index,
                        started,
                        time.monotonic() - started,
                        response.status_code,
                        version,
                        None if response.is_success else response.text[:300],
                    )
                except httpx.HTTPError as exc:
                    answer = Answer(
                        index, started, time.monotonic() - started, None, None, repr(exc)
                    )
                with self._lock:
                    self.answers.append(answer)

    # --- what happened ---
    def snapshot(self) -> list[Answer]:
        with self._lock:
            return list(self.answers)

    def failures(self) -> list[Answer]:
        return [a for a in self.snapshot() if a.status != 200]

    def first_of_version(self, version: str) -> Answer | None:
        found = [a for a in self.snapshot() if a.version == version]
        return min(found, key=lambda a: a.sent_at + a.seconds) if found else None

    def percentile_ms(self, q: float) -> float:
        seconds = sorted(a.seconds for a in self.snapshot())
        return 1000 * seconds[min(len(seconds) - 1, int(q * len(seconds)))] if seconds else 0.0

    def wait_for(self, count: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.snapshot()) < count:
            assert time.monotonic() < deadline, f"fewer than {count} answers in {timeout}s"
            time.sleep(0.05)

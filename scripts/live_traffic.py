"""Live traffic for the demo: realistic ``/predict`` requests, like the training data or shifted.

``.venv/bin/python scripts/live_traffic.py --url http://127.0.0.1:8000 --records 5000 [--shifted]``

The monitor (``tasks.monitor``) compares what users ask with the data the production model
was trained on. To show it at work the demo needs traffic of both kinds, and this module makes
it from realistic records (``bench/payloads.py``: the data API simulator's own rows, batch 6 of
the demo's seed, so the cities and zip codes are those the demo's model learnt):

- unshifted: records drawn uniformly from that pool, so the live mix is the training mix;
- shifted (:class:`Shift`): a mixture where one state (Vermont by default, under 1% of the
  data) and luxury homes (``house_size`` of at least 3,500 sq ft, about the top 7%) are
  over-represented - 40% of the records from the state, 40% luxury homes from anywhere, 20%
  the usual mix. Users "now ask about Vermont" and about big houses: state and house_size
  drift, and the predicted prices with them.

Draws are seeded (same arguments, same records, in the same order). Records go out in batches
(the API prices several records per request; ``--batch-size`` at most the service's
``SERVING_MAX_BATCH_ROWS``) over one HTTP connection, each request with an ``X-Request-ID`` of
``<prefix>-<n>`` so its rows can be found in the inference log. A progress line goes to stderr.
Any answer but 200 stops it with the service's own words: a demo must not count refused
requests as traffic.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import httpx
import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script: bench/ lives beside scripts/
    sys.path.insert(0, str(REPO))

from bench.payloads import DEMO_SEED, realistic_pool  # noqa: E402

#: the pool's scale of the simulator (0.1: ~36,000 records, ~150 of them in Vermont; < 1 s)
POOL_SCALE = 0.1
DEFAULT_RECORDS = 5_000
DEFAULT_BATCH_SIZE = 50


class LiveTrafficError(RuntimeError):
    """The service refused a request, or the shift asks for records the pool does not have."""


@dataclass(frozen=True)
class Shift:
    """How shifted traffic differs: shares of the records from ``state`` and of luxury homes."""

    state: str = "Vermont"
    state_share: float = 0.4
    luxury_share: float = 0.4
    luxury_sqft: float = 3_500.0

    def __post_init__(self) -> None:
        shares = (self.state_share, self.luxury_share)
        if min(shares) < 0 or sum(shares) > 1:
            raise ValueError(
                f"state_share {self.state_share} and luxury_share {self.luxury_share} must be "
                ">= 0 and add up to at most 1 (the rest is the usual mix)"
            )

    def is_luxury(self, record: dict[str, Any]) -> bool:
        size = record.get("house_size")
        return size is not None and size >= self.luxury_sqft


@dataclass(frozen=True)
class TrafficResult:
    records: int
    requests: int
    seconds: float
    model_versions: tuple[str, ...]  # the versions that answered (X-Model-Version)


def sample_records(
    n: int,
    *,
    shift: Shift | None = None,
    seed: int = 0,
    pool: Sequence[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """``n`` records drawn (with replacement, seeded) from ``pool`` - the demo's realistic
    records by default - as the training mix, or shifted by ``shift``."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    pool = list(pool) if pool is not None else realistic_pool(DEMO_SEED, POOL_SCALE)
    rng = np.random.default_rng([seed, 0 if shift is None else 1])
    if shift is None:
        return [pool[i] for i in rng.integers(0, len(pool), n)]
    in_state = [r for r in pool if r.get("state") == shift.state]
    luxury = [r for r in pool if shift.is_luxury(r)]
    for name, rows, share in (
        (f"state {shift.state!r}", in_state, shift.state_share),
        (f"luxury (house_size >= {shift.luxury_sqft:,.0f})", luxury, shift.luxury_share),
    ):
        if share > 0 and not rows:
            raise LiveTrafficError(
                f"the pool of {len(pool):,} records has no {name} record: pick another "
                "state or threshold, or a larger pool"
            )
    # each record picks its component (state, luxury, usual mix), then a record of it
    parts = rng.choice(
        3,
        size=n,
        p=[shift.state_share, shift.luxury_share, 1 - shift.state_share - shift.luxury_share],
    )
    sources = (in_state, luxury, pool)
    return [sources[part][int(rng.integers(0, len(sources[part])))] for part in parts]


def send(
    url: str,
    records: Sequence[dict[str, Any]],
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    request_prefix: str = "live",
    timeout: float = 30.0,
    progress: TextIO | None = None,
) -> TrafficResult:
    """POST ``records`` to ``{url}/predict``, ``batch_size`` per request, one after another."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    started = time.perf_counter()
    versions: set[str] = set()
    requests = 0
    with httpx.Client(base_url=url.rstrip("/"), timeout=timeout) as client:
        for start in range(0, len(records), batch_size):
            chunk = list(records[start : start + batch_size])
            answer = client.post(
                "/predict", json=chunk, headers={"X-Request-ID": f"{request_prefix}-{requests}"}
            )
            if answer.status_code != 200:
                raise LiveTrafficError(
                    f"{url}/predict answered {answer.status_code} to request {requests} "
                    f"({len(chunk)} records): {answer.text[:300]}"
                )
            versions.add(answer.headers.get("X-Model-Version", "?"))
            requests += 1
            done = start + len(chunk)
            if progress is not None:
                progress.write(
                    f"\rlive traffic: {done:,}/{len(records):,} records in {requests:,} requests "
                    f"({time.perf_counter() - started:.1f} s)"
                )
                progress.flush()
    if progress is not None:
        progress.write("\n")
    return TrafficResult(
        len(records), requests, time.perf_counter() - started, tuple(sorted(versions))
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--url",
        default=os.environ.get("UI_SERVING_URL", "http://127.0.0.1:8000"),
        help="the serving's base URL (default: UI_SERVING_URL, else http://127.0.0.1:8000)",
    )
    parser.add_argument("--records", type=int, default=DEFAULT_RECORDS)
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--shifted", action="store_true", help="over-represent one state and luxury homes"
    )
    parser.add_argument("--state", default=Shift.state)
    parser.add_argument("--state-share", type=float, default=Shift.state_share)
    parser.add_argument("--luxury-share", type=float, default=Shift.luxury_share)
    parser.add_argument("--luxury-sqft", type=float, default=Shift.luxury_sqft)
    parser.add_argument("--request-prefix", default="live")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        shift = (
            Shift(args.state, args.state_share, args.luxury_share, args.luxury_sqft)
            if args.shifted
            else None
        )
        records = sample_records(args.records, shift=shift, seed=args.seed)
        result = send(
            args.url,
            records,
            batch_size=args.batch_size,
            request_prefix=args.request_prefix,
            progress=sys.stderr,
        )
    except (LiveTrafficError, ValueError) as exc:
        print(f"live traffic failed: {exc}", file=sys.stderr)
        return 1
    except httpx.HTTPError as exc:
        print(
            f"live traffic failed: {args.url} did not answer ({exc.__class__.__name__}: {exc}): "
            "start serving (`make serve`) or pass its --url",
            file=sys.stderr,
        )
        return 1
    kind = (
        f"shifted ({shift.state} {shift.state_share:.0%}, luxury {shift.luxury_share:.0%})"
        if shift
        else "unshifted"
    )
    print(
        f"live traffic: {result.records:,} {kind} records in {result.requests:,} requests to "
        f"{args.url} in {result.seconds:.1f} s, answered by v{', v'.join(result.model_versions)}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

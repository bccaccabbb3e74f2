"""Benchmark: HistGradientBoosting's threads and OpenMP waits, idle and beside busy processes.

The figures behind :mod:`tasks.core.threads`: one fit of 300 trees (63 leaves, no early stopping) on
random data with the model's 16 columns, with 1 and 2 OpenMP threads, under the runtime's
default waits (spin, then sleep) and under ``OMP_WAIT_POLICY=PASSIVE``, on an idle machine and
with ``--busy N`` CPU-bound processes beside it. Each configuration runs in a fresh interpreter
(the runtime reads its waits once, when it loads)::

    .venv/bin/python bench/threads.py --rows 50000,200000,400000
    .venv/bin/python bench/threads.py --rows 200000 --busy 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

FIT = """
import json, resource, sys, time
import numpy as np
import sklearn.ensemble
from threadpoolctl import threadpool_limits
from sklearn.ensemble import HistGradientBoostingRegressor

rows, threads = int(sys.argv[1]), int(sys.argv[2])
rng = np.random.default_rng(0)
x = rng.normal(size=(rows, 16))
y = 2 * x[:, 0] + np.sin(x[:, 1]) + 0.3 * rng.normal(size=rows)
regressor = HistGradientBoostingRegressor(
    max_iter=300, max_leaf_nodes=63, min_samples_leaf=40, early_stopping=False, random_state=0
)
with threadpool_limits(limits=threads):
    usage = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    regressor.fit(x, y)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
cpu = after.ru_utime + after.ru_stime - usage.ru_utime - usage.ru_stime
print(json.dumps({"wall": wall, "cpu": cpu}))
"""

BUSY = "while True: pass"


@contextmanager
def busy_processes(count: int) -> Iterator[None]:
    processes = [subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(count)]
    try:
        yield
    finally:
        for process in processes:
            process.kill()
            process.wait()


def fit(rows: int, threads: int, passive: bool) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if passive:
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    out = subprocess.run(
        [sys.executable, "-c", FIT, str(rows), str(threads)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", default="50000,200000,400000", help="comma-separated sizes")
    parser.add_argument("--busy", type=int, default=0, help="CPU-bound processes beside it")
    args = parser.parse_args(argv)
    print(f"load average before: {os.getloadavg()[0]:.2f}; {args.busy} busy processes beside")
    print("| rows | waits | 1 thread wall / CPU s | 2 threads wall / CPU s |")
    print("|---:|---|---:|---:|")
    with busy_processes(args.busy):
        for rows in (int(r) for r in args.rows.split(",")):
            for passive in (False, True):
                one, two = fit(rows, 1, passive), fit(rows, 2, passive)
                print(
                    f"| {rows:,} | {'passive' if passive else 'default'} | "
                    f"{one['wall']:.2f} / {one['cpu']:.2f} | {two['wall']:.2f} / {two['cpu']:.2f} |",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())

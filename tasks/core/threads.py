"""How many OpenMP threads training and scoring use, and how idle ones wait.

scikit-learn's HistGradientBoosting runs on OpenMP (libgomp), whose idle threads spin for a
while before they sleep. Measured on the 2-core development VM (bench/README.md, "Threads"),
one fit of 300 trees on 16 columns (``bench/threads.py``):

- on an idle machine, spinning waits make 2 threads pay: 200,000 rows in 4.8 s instead of
  6.7 s with one thread, 400,000 rows in 8.6 s instead of 13.3 s; passive waits
  (``OMP_WAIT_POLICY=PASSIVE``) make 2 threads slower than one at every size (each of the
  thousands of parallel regions per fit wakes a sleeping thread);
- on a busy machine (two other processes wanting both cores), spinning is a disaster:
  200,000 rows took 46 s with 2 threads spinning (``GOMP_SPINCOUNT=10000``, a thirtieth of
  libgomp's default spin), 18 s with 2 passive ones, 12 s with one thread.

So a task looks at the machine when it starts (:func:`choose_waits`, before scikit-learn
loads): if other work already wants the cores (the 1-minute load average at least the CPU
limit), idle threads sleep and training uses one thread; otherwise the runtime's
default waits stay and training on many rows uses the CPU limit
(:func:`training_threads`). ``OMP_WAIT_POLICY`` set by the operator always wins, and so does
``TRAIN_THREADS``.
"""

from __future__ import annotations

import os
from pathlib import Path

#: fewer rows than this: one thread, whatever the machine (a second one costs more than it
#: gives: 50,000 rows took 3.4-3.9 s with one thread and 3.4-4.5 s with two, spinning)
MIN_ROWS_PER_EXTRA_THREAD = 200_000

#: the waits' variable of the OpenMP runtime (read once, when it loads)
WAIT_POLICY = "OMP_WAIT_POLICY"


def cpu_limit() -> int:
    """The CPUs this process may use: the cgroup's quota (a pod's CPU limit) if lower."""
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
    except (OSError, ValueError):
        return max(1, available)
    if quota == "max":
        return max(1, available)
    return max(1, min(available, int(int(quota) // int(period)) or 1))


def machine_is_busy(load: float | None = None, cpus: int | None = None) -> bool:
    """Other work already wants the cores: the 1-minute load average (``load``, default the
    machine's) is at least the CPU limit (``cpus``). A pipeline's own tasks run one after the
    other and keep it around 1-1.8 on 2 cores; two other busy processes push it above 2."""
    if load is None:
        try:
            load = os.getloadavg()[0]
        except OSError:  # no load average on this platform: assume the worst
            return True
    return load >= (cpus if cpus is not None else cpu_limit())


#: the policy :func:`choose_waits` chose for this process's OpenMP runtime (None: not yet). A
#: run forked from the local runtime's launcher inherits it with the runtime the launcher
#: loaded, though its environment is replaced by the run's.
_chosen: str | None = None


def choose_waits() -> str:
    """Make idle OpenMP threads sleep (``OMP_WAIT_POLICY=PASSIVE``) if the machine is busy,
    unless the variable is already set; the policy in force ("default" if unset). Call it
    before anything loads the OpenMP runtime (scikit-learn): the first call decides, for good
    (the runtime reads the variable once)."""
    global _chosen
    if _chosen is None:
        if WAIT_POLICY not in os.environ and machine_is_busy():
            os.environ[WAIT_POLICY] = "PASSIVE"
        _chosen = os.environ.get(WAIT_POLICY, "default")
    return _chosen


def waits_are_passive() -> bool:
    """The OpenMP runtime's idle threads sleep (the policy chosen, else the environment's)."""
    policy = _chosen if _chosen is not None else os.environ.get(WAIT_POLICY, "")
    return policy.strip().upper() == "PASSIVE"


def training_threads(setting: int, rows: int | None = None) -> int:
    """OpenMP threads for training on ``rows`` rows: ``setting`` (``TRAIN_THREADS``) if not
    0; else one below :data:`MIN_ROWS_PER_EXTRA_THREAD` rows or with passive waits, the CPU
    limit otherwise."""
    if setting:
        return setting
    if rows is not None and rows < MIN_ROWS_PER_EXTRA_THREAD:
        return 1
    if waits_are_passive():
        return 1
    return cpu_limit()

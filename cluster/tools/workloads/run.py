"""`make cluster-run`: every workload of our images started here from its spec - the rendered
cluster tree (and the DAG's pods) and docker-compose.yaml - with one line per workload
(started / ready / smoke call passed, with seconds) and the whole run's time. Exit status 1
when any workload failed, saying what failed and where its log is.

Usage: python cluster/tools/workloads [--only cluster|compose] [--keep DIR] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from workloads.runner import Run


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="cluster-run", description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("cluster", "compose"))
    parser.add_argument("--keep", type=Path, help="run folder to keep (logs, roots)")
    parser.add_argument("--json", type=Path, help="also write every outcome to this file")
    args = parser.parse_args(argv)
    started = time.monotonic()
    root = args.keep or Path(tempfile.mkdtemp(prefix="cluster-run-"))
    root.mkdir(parents=True, exist_ok=True)
    runs: list[tuple[str, Run]] = []
    if args.only in (None, "cluster"):
        from workloads.cluster_run import run_cluster

        run = Run(root / "cluster")
        runs.append(("rendered tree (single-node) and the DAG's pods", run))
        _guarded(run, run_cluster)
    if args.only in (None, "compose"):
        from workloads.compose_run import run_compose

        run = Run(root / "compose")
        runs.append(("docker-compose.yaml", run))
        _guarded(run, run_compose)
    failed = []
    for title, run in runs:
        print(f"\n== {title}")
        for outcome in run.outcomes.values():
            print(outcome.line())
            if not outcome.ok:
                failed.append((outcome.name, run.details.get(outcome.name, outcome.error)))
    total = time.monotonic() - started
    print(f"\nwhole run: {total:.1f}s")
    if args.json:
        args.json.write_text(json.dumps({
            "seconds": total,
            "outcomes": [o.__dict__ | {"ok": o.ok} for _, run in runs for o in run.outcomes.values()],
        }, indent=1))  # fmt: skip
    if failed:
        print(f"\n{len(failed)} failed:")
        for name, detail in failed:
            print(f"--- {name}\n{detail}")
        print(
            f"\nLogs and roots: {root}. Fix the spec (or the code it runs), then run `make cluster-run` again."
        )
        return 1
    if args.keep is None:
        shutil.rmtree(root, ignore_errors=True)
    return 0


def _guarded(run: Run, body) -> None:
    try:
        body(run)
    except Exception as exc:
        run.fail("(set-up)", f"{type(exc).__name__}: {exc}")

"""Where a `make demo` spent its DAG runs, read back from its logs (var/airflow/demo-logs).

    .venv/bin/python bench/demo_timeline.py [LOG_FOLDER]

For each log (``replay.log``, ``run-N.log``: one ``airflow dags test`` each) the wall time of
every task process, from the local operator's ``running ...`` line to its ``exit`` line, and
what Airflow spent around them (parsing, the DAG run, scheduling the tasks, the in-process
Execution API); then per task the first process and the median of the others (with
``PIPELINE_LOCAL_PRELOAD`` the first run of a task also starts its launcher).
"""

from __future__ import annotations

import re
import statistics
import sys
from collections import defaultdict
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+)Z")
RUNNING = re.compile(r"\] running \S+ -m (tasks\.\w+)")
EXITED = re.compile(r"(tasks\.\w+): exit (-?\d+)")


def timeline(log: Path) -> tuple[list[tuple[str, float]], float]:
    """(task, seconds) of each task process in ``log``, and the log's whole span in seconds."""
    stamps: list[tuple[float, str]] = []
    for line in log.read_text(errors="replace").splitlines():
        if match := STAMP.match(line):
            stamps.append((datetime.fromisoformat(match.group(1)).timestamp(), line))
    processes: list[tuple[str, float]] = []
    started: float | None = None
    for stamp, line in stamps:
        if RUNNING.search(line):
            started = stamp
        elif (match := EXITED.search(line)) and started is not None:
            processes.append((match.group(1).removeprefix("tasks."), stamp - started))
            started = None
    span = stamps[-1][0] - stamps[0][0] if stamps else 0.0
    return processes, span


def main() -> int:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "var" / "airflow" / "demo-logs"
    logs = sorted(folder.glob("replay.log")) + sorted(
        folder.glob("run-*.log"), key=lambda p: int(p.stem.split("-")[1])
    )
    if not logs:
        print(f"no demo logs in {folder}: run `make demo` first")
        return 2
    per_task: dict[str, list[float]] = defaultdict(list)
    print("| log | task processes | seconds in tasks | logged span | Airflow around them |")
    print("|---|---|---:|---:|---:|")
    total_tasks = total_span = 0.0
    for log in logs:
        processes, span = timeline(log)
        in_tasks = sum(seconds for _, seconds in processes)
        total_tasks += in_tasks
        total_span += span
        for task, seconds in processes:
            per_task[task].append(seconds)
        listed = ", ".join(f"{task} {seconds:.1f}" for task, seconds in processes)
        print(f"| {log.stem} | {listed} | {in_tasks:.1f} | {span:.1f} | {span - in_tasks:.1f} |")
    print(
        f"| all | | {total_tasks:.1f} | {total_span:.1f} | {total_span - total_tasks:.1f} |\n"
        "\n(the span runs from a log's first line to its last: the Airflow process's start, "
        "before its first line, is not in it)\n"
    )
    print("| task | processes | first s | median of the others s | all s |")
    print("|---|---:|---:|---:|---:|")
    for task, seconds in per_task.items():
        rest = f"{statistics.median(seconds[1:]):.2f}" if len(seconds) > 1 else "-"
        print(f"| {task} | {len(seconds)} | {seconds[0]:.2f} | {rest} | {sum(seconds):.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

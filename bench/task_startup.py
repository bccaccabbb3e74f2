"""Benchmark: what each task pays to start (interpreter, imports, connections) and to run.

    .venv/bin/python bench/task_startup.py [--repeat 3] [--json after.json] [--compare before.json]

Three measurements, every figure from its own process:

1. the interpreter alone (``python -c pass``) and each task's ``python -m tasks.<name>
   --schema`` (parses its arguments, imports its module, prints a schema: the start-up a task
   pays before it does anything), median of ``--repeat`` runs;
2. the demo's pipeline without Airflow: the simulator at the demo's scale (2%), then
   replay, and fetch -> validate -> drift_check -> (train -> promote) -> record for every batch
   until fetch says exhausted, with the demo's task settings (``scripts/demo_pipeline.py``)
   on fresh file/SQLite stores; ``--repeat`` passes. Each process runs under
   ``bench/startup_probe.py`` with ``-X importtime``, which splits its wall time into the
   interpreter's start, the imports before ``main``, the connections (ledger: engine and
   migrations; lake; MLflow: client and SQL stores, their imports excluded), the imports
   during the run (lazy ones), the exit (from the task's end to the process's) and the rest
   (the work);
3. the sum over the pass: what the demo's task processes cost without Airflow.

Wall seconds depend on how busy the machine is; CPU seconds (user + system, from ``wait4``)
much less: the table gives both, and the load average before and after.
``--json`` writes every measurement; ``--compare`` prints a before/after table against such
a file.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from scripts.demo_pipeline import demo_environment, parse_args  # noqa: E402
from tests.data_api.server import running_data_api  # noqa: E402
from tests.support.steps import load_specs  # noqa: E402

TASKS = tuple(load_specs(REPO).TASKS)  # the one list of steps, dags/realtor/specs.py
PROBE = REPO / "bench" / "startup_probe.py"


@dataclass
class Process:
    """One task process: wall and CPU seconds, split by the probe's markers."""

    task: str
    batch: int | None
    wall: float
    cpu: float
    peak_rss_mib: int
    interpreter: float = 0.0  # spawn -> the probe's first line
    interpreter_cpu: float = 0.0
    before_main: float = 0.0  # the probe's first line -> main (the module's imports)
    before_main_cpu: float = 0.0
    imports_before_main: float = 0.0  # of which importtime says imports
    teardown: float = 0.0  # the probe's last line -> exit (atexit, threads, freeing memory)
    connect: float = 0.0  # connection windows minus the imports inside them
    connect_by: dict[str, float] = field(default_factory=dict)
    lazy_imports: float = 0.0  # imports after main (in connections or not)
    lazy_by_package: dict[str, float] = field(default_factory=dict)
    modules: int = 0
    result: dict[str, Any] = field(default_factory=dict)

    @property
    def work(self) -> float:
        return max(
            0.0,
            self.wall
            - self.interpreter
            - self.before_main
            - self.connect
            - self.lazy_imports
            - self.teardown,
        )


def load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def spawn(command: list[str], env: dict[str, str]) -> tuple[float, float, int, str, float]:
    """Run ``command`` in ``PYTHONPATH``'s checkout; (wall s, CPU s, peak RSS MiB, stderr, spawn epoch)."""
    spawned = time.time()
    started = time.perf_counter()
    process = subprocess.Popen(
        command, cwd=env["PYTHONPATH"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    assert process.stderr is not None
    stderr = process.stderr.read().decode(errors="replace")
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        tail = "\n".join(line for line in stderr.splitlines() if "import time:" not in line)
        raise SystemExit(f"{' '.join(command)} failed:\n{tail[-3000:]}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss // 1024, stderr, spawned


def parse_probe(process: Process, stderr: str, spawned: float) -> None:
    """Split ``process.wall`` with the probe's markers and ``-X importtime``'s lines."""
    phase = "startup"
    window: str | None = None
    window_start = 0.0
    window_imports = 0.0
    marks: dict[str, tuple[float, float]] = {}
    for line in stderr.splitlines():
        if line.startswith("import time:"):
            parts = line.split("|")
            if len(parts) != 3 or not parts[1].strip().isdigit():
                continue
            name = parts[2]
            depth = (len(name) - len(name.lstrip(" ")) - 1) // 2
            process.modules += 1
            if depth != 0:
                continue
            seconds = int(parts[1]) / 1e6
            if phase == "before-main":
                process.imports_before_main += seconds
            elif phase == "run":
                process.lazy_imports += seconds
                package = name.strip().split(".")[0]
                process.lazy_by_package[package] = (
                    process.lazy_by_package.get(package, 0.0) + seconds
                )
                if window is not None:
                    window_imports += seconds
        elif line.startswith("startup-probe: "):
            event, wall, cpu, *rest = line.removeprefix("startup-probe: ").split(" ")
            marks[event] = (float(wall), float(cpu))
            if event == "probe-start":
                phase = "before-main"
            elif event == "main":
                phase = "run"
            elif event == "connect-begin":
                window, window_start, window_imports = rest[0], float(wall), 0.0
            elif event == "connect-end" and window is not None:
                spent = float(wall) - window_start - window_imports
                process.connect += spent
                process.connect_by[window] = process.connect_by.get(window, 0.0) + spent
                window = None
            elif event == "end":
                phase = "after"
    start_wall, start_cpu = marks["probe-start"]
    main_wall, main_cpu = marks.get("main", marks["end"])
    process.interpreter = start_wall - spawned
    process.interpreter_cpu = start_cpu
    process.before_main = main_wall - start_wall
    process.before_main_cpu = main_cpu - start_cpu
    process.teardown = max(0.0, spawned + process.wall - marks["end"][0])


def run_probed(task: str, env: dict[str, str], batch: int | None, *args: str) -> Process:
    xcom = Path(env["XCOM_RETURN_PATH"])
    xcom.unlink(missing_ok=True)
    command = [sys.executable, "-X", "importtime", str(PROBE), f"tasks.{task}", *args]
    wall, cpu, rss, stderr, spawned = spawn(command, env)
    process = Process(task=task, batch=batch, wall=wall, cpu=cpu, peak_rss_mib=rss)
    parse_probe(process, stderr, spawned)
    process.result = json.loads(xcom.read_text())
    return process


def pipeline_pass(env: dict[str, str], work: Path) -> list[Process]:
    """replay, then every batch through the tasks until fetch says exhausted."""
    env = {
        **env,
        "STORAGE_URL": (work / "lake").as_uri(),
        "LEDGER_URL": f"sqlite:///{work / 'ledger.db'}",
        "MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlflow.db'}",
        "MLFLOW_ARTIFACT_LOCATION": str(work / "mlartifacts"),
        "XCOM_RETURN_PATH": str(work / "return.json"),
    }
    processes = [run_probed("replay", env, None)]
    while True:
        fetched = run_probed("fetch", env, None)
        processes.append(fetched)
        if fetched.result["status"] == "exhausted":
            return processes
        batch = fetched.result["batch_number"]
        fetched.batch = batch
        batch_id = str(fetched.result["batch_id"])
        for task in ("validate", "drift_check"):
            processes.append(run_probed(task, env, batch, "--batch-id", batch_id))
        if processes[-1].result["decision"] == "train":
            for task in ("train", "promote"):
                processes.append(run_probed(task, env, batch, "--batch-id", batch_id))
        processes.append(run_probed("record", env, batch, "--batch-id", batch_id))


def median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def startup_only(env: dict[str, str], repeat: int) -> dict[str, dict[str, float]]:
    """``python -c pass`` and ``python -m tasks.<name> --schema``: median wall and CPU."""
    found: dict[str, dict[str, float]] = {}
    commands = {"interpreter": [sys.executable, "-c", "pass"]}
    commands |= {task: [sys.executable, "-m", f"tasks.{task}", "--schema"] for task in TASKS}
    for name, command in commands.items():
        runs = [spawn(command, env)[:2] for _ in range(repeat)]
        stderr = spawn([sys.executable, "-X", "importtime", *command[1:]], env)[3]
        found[name] = {
            "wall": median([wall for wall, _ in runs]),
            "cpu": median([cpu for _, cpu in runs]),
            "modules": sum(line.startswith("import time:") for line in stderr.splitlines()) - 1,
        }
    return found


def per_task(passes: list[list[Process]]) -> dict[str, dict[str, Any]]:
    """Medians over every process of each task (every batch, every pass)."""
    grouped: dict[str, list[Process]] = defaultdict(list)
    for processes in passes:
        for process in processes:
            grouped[process.task].append(process)
    table: dict[str, dict[str, Any]] = {}
    for task in TASKS:
        runs = grouped.get(task, [])
        if not runs:
            continue
        lazy: dict[str, list[float]] = defaultdict(list)
        connect: dict[str, list[float]] = defaultdict(list)
        for run in runs:
            for package, seconds in run.lazy_by_package.items():
                lazy[package].append(seconds)
            for name, seconds in run.connect_by.items():
                connect[name].append(seconds)
        top = sorted(((sum(v) / len(runs), k) for k, v in lazy.items()), reverse=True)[:4]
        table[task] = {
            "processes": len(runs),
            "interpreter": median([r.interpreter for r in runs]),
            "before_main": median([r.before_main for r in runs]),
            "before_main_cpu": median([r.before_main_cpu for r in runs]),
            "connect": median([r.connect for r in runs]),
            "connect_by": {k: sum(v) / len(runs) for k, v in sorted(connect.items())},
            "lazy_imports": median([r.lazy_imports for r in runs]),
            "lazy_top": [(k, round(v, 2)) for v, k in top if v >= 0.05],
            "work": median([r.work for r in runs]),
            "teardown": median([r.teardown for r in runs]),
            "wall": median([r.wall for r in runs]),
            "cpu": median([r.cpu for r in runs]),
            "wall_total": sum(r.wall for r in runs) / len(passes),
            "cpu_total": sum(r.cpu for r in runs) / len(passes),
            "peak_rss_mib": max(r.peak_rss_mib for r in runs),
        }
    return table


def print_tables(found: dict[str, Any]) -> None:
    schema, tasks = found["startup_only"], found["per_task"]
    interpreter = schema["interpreter"]
    print(
        f"\ninterpreter alone (`python -c pass`): {interpreter['wall']:.2f} s wall, "
        f"{interpreter['cpu']:.2f} s CPU, {interpreter['modules']} modules"
    )
    print("\nStart-up before any work: `python -m tasks.<name> --schema` (median)\n")
    print("| task | wall s | CPU s | modules |\n|---|---:|---:|---:|")
    for task in TASKS:
        row = schema[task]
        print(f"| {task} | {row['wall']:.2f} | {row['cpu']:.2f} | {row['modules']:,} |")
    print(
        "\nEach task in the demo's pipeline without Airflow (median over its processes; "
        "seconds wall unless CPU)\n"
    )
    print(
        "| task | runs | interpreter | imports to main | (CPU) | connections | lazy imports "
        "| work | exit | whole | whole CPU | all runs | all runs CPU | peak MiB |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    )
    for task, row in tasks.items():
        print(
            f"| {task} | {row['processes']} | {row['interpreter']:.2f} | {row['before_main']:.2f} "
            f"| {row['before_main_cpu']:.2f} | {row['connect']:.2f} | {row['lazy_imports']:.2f} "
            f"| {row['work']:.2f} | {row.get('teardown', 0):.2f} | {row['wall']:.2f} "
            f"| {row['cpu']:.2f} "
            f"| {row['wall_total']:.1f} | {row['cpu_total']:.1f} | {row['peak_rss_mib']} |"
        )
    print("\nWhere the connections and the lazy imports go (mean seconds per process)\n")
    print("| task | connections | lazy imports (top packages) |\n|---|---|---|")
    for task, row in tasks.items():
        connect = ", ".join(f"{k} {v:.2f}" for k, v in row["connect_by"].items()) or "-"
        lazy = ", ".join(f"{k} {v:.2f}" for k, v in row["lazy_top"]) or "-"
        print(f"| {task} | {connect} | {lazy} |")
    total = found["pass_totals"]
    print(
        f"\nAll {total['processes']} task processes of a pass: {total['wall']:.1f} s wall, "
        f"{total['cpu']:.1f} s CPU (median over {len(found['passes'])} passes); "
        f"load average {found['load_before']} before, {found['load_after']} after"
    )


def print_comparison(before: dict[str, Any], after: dict[str, Any]) -> None:
    print("\nBefore -> after\n")
    print(
        "| task | --schema CPU s | imports to main s | connections s | lazy imports s "
        "| whole s | whole CPU s | all runs CPU s |\n|---|---|---|---|---|---|---|---|"
    )
    for task in TASKS:
        old, new = before["per_task"].get(task), after["per_task"].get(task)
        if old is None or new is None:
            continue
        cells = [
            f"{before['startup_only'][task]['cpu']:.2f} -> {after['startup_only'][task]['cpu']:.2f}"
        ]
        for key, digits in (
            ("before_main", 2),
            ("connect", 2),
            ("lazy_imports", 2),
            ("wall", 2),
            ("cpu", 2),
            ("cpu_total", 1),
        ):
            cells.append(f"{old[key]:.{digits}f} -> {new[key]:.{digits}f}")
        print(f"| {task} | " + " | ".join(cells) + " |")
    old, new = before["pass_totals"], after["pass_totals"]
    print(
        f"\nAll task processes of a pass: {old['wall']:.1f} -> {new['wall']:.1f} s wall, "
        f"{old['cpu']:.1f} -> {new['cpu']:.1f} s CPU ({old['processes']} -> "
        f"{new['processes']} processes); load before/after: {before['load_before']} / "
        f"{before['load_after']} -> {after['load_before']} / {after['load_after']}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs of --schema, and passes")
    parser.add_argument("--passes", type=int, default=None, help="pipeline passes (--repeat)")
    parser.add_argument("--scale", type=float, default=0.02, help="the simulator's scale")
    parser.add_argument("--json", type=Path, help="write every measurement here")
    parser.add_argument("--compare", type=Path, help="a --json file to compare with")
    parser.add_argument(
        "--repo",
        type=Path,
        default=REPO,
        help="measure the tasks of this checkout (e.g. a worktree of the commit before), "
        "with this environment; default: this one",
    )
    args = parser.parse_args()
    demo = parse_args(["--scale", str(args.scale)])
    found: dict[str, Any] = {"load_before": load(), "scale": args.scale, "repo": str(args.repo)}
    with running_data_api(scale=args.scale, seed=demo.seed) as api:
        env = demo_environment(demo, api)
        env["PYTHONPATH"] = str(args.repo.resolve())
        found["startup_only"] = startup_only(env, args.repeat)
        passes = []
        for _ in range(args.passes or args.repeat):
            with tempfile.TemporaryDirectory(prefix="bench-startup-") as work:
                passes.append(pipeline_pass(env, Path(work)))
    found["load_after"] = load()
    found["per_task"] = per_task(passes)
    found["passes"] = [[asdict(p) | {"work": p.work} for p in processes] for processes in passes]
    found["pass_totals"] = {
        "processes": median([len(p) for p in passes]),
        "wall": median([sum(p.wall for p in processes) for processes in passes]),
        "cpu": median([sum(p.cpu for p in processes) for processes in passes]),
    }
    print_tables(found)
    if args.json:
        args.json.write_text(json.dumps(found, indent=1, default=str))
    if args.compare:
        print_comparison(json.loads(args.compare.read_text()), found)
    return 0


if __name__ == "__main__":
    sys.exit(main())

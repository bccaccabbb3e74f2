"""``make demo``: the real DAG, through Airflow, once per batch until the data API is exhausted.

Runs with the tasks' environment (``.venv/bin/python scripts/demo_pipeline.py``) and drives
the Airflow CLI of ``.venv-airflow``. Everything is embedded, nothing needs Docker:

- the data API simulator (``python -m data_api``, small scale) on a free local port, unless an
  external API is given: ``--api-url URL`` or ``DATA_API_URL`` (``make demo
  DATA_API_URL=http://host:port``, e.g. the course's API): then nothing is started;
- Airflow's metadata in SQLite under ``var/airflow`` (``airflow db migrate`` on first use);
- the ledger ``var/ledger.db`` (SQLite), the lake ``var/lake`` (file://), MLflow
  ``var/mlflow.db`` (a local SQLite store), the tasks as processes (``PIPELINE_RUNTIME=local``)
  forked from a launcher per task that imported its libraries once
  (``PIPELINE_LOCAL_PRELOAD=1``, the default; ``0`` starts a fresh interpreter per task, as a
  pod does).

With its own simulator it triggers ``realtor_replay`` (start the API's batches and the ledger
cursor over; with an external API only when ``--replay`` asks: restarting the course's API
resets the group's cursor for everyone using that group), then
``airflow dags test realtor_pipeline`` per batch until fetch reports ``exhausted``, showing each
task's summary line as it finishes, and prints what happened to every batch, read back from
the ledger. A batch an earlier run started and did not finish (killed before record) is
named at the start, finished by the first run (fetch hands it back before asking the API),
and the summary says so ("batch 0 was interrupted in an earlier run; finished now").
The ``airflow`` commands run one after the other in one Airflow process
(``scripts/airflow_runs.py``), which pays Airflow's start-up once instead of once per run.
With its own simulator it holds the last batch back for the live act
(``scripts/demo_live.py``): serving starts on the same stores, live traffic like the training
data gives a ``stable`` window of ``realtor_monitor``, shifted traffic a ``drifted`` one, whose
Asset event queues ``realtor_pipeline``; the demo starts that run, and the last batch's
decision names the live drift. Serving then prices a few houses, explains one, and stops
(``scripts/local_apps.py``; ``make serve`` keeps serving and the UI running). ``--no-live``:
every batch at once, then serving, as before. The last lines
say where the time went (each phase's wall clock, the task processes' share of the DAG runs,
the CPU time of everything the demo started).
``--fresh`` deletes the previous demo's ledger, lake and MLflow store (with its artifacts) first;
without it, batches already in the ledger come back as duplicates and keep their decisions.
Whatever it started, it stops (also on Ctrl-C). Environment variables already set win over
the demo's defaults (e.g. ``MIN_TRAIN_ROWS``, ``TRAIN_MAX_TRIALS``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
VAR = REPO / "var"
AIRFLOW_HOME = VAR / "airflow"
AIRFLOW = REPO / ".venv-airflow" / "bin" / "airflow"
AIRFLOW_PY = AIRFLOW.with_name("python")
TASKS_PYTHON = REPO / ".venv" / "bin" / "python"
LOGS = AIRFLOW_HOME / "demo-logs"
FULL_SCALE_MIN_TRAIN_ROWS = 10_000

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from data_api.scenarios import SCENARIOS  # noqa: E402
from scripts.demo_live import WindowLine, live_act, print_windows  # noqa: E402
from scripts.local_apps import DEMO_STORES, background, free_port, say, serve_and_try  # noqa: E402

_STARTING = re.compile(r"\[DAG TEST\] starting task_id=(\w+)")
_ENDED = re.compile(r"\[DAG TEST\] end task task_id=(\w+)")
_RSS = re.compile(r"tasks\.\w+: exit \d+, peak RSS (\d+) MiB")
_STDOUT = re.compile(r"\[stdout\] (.*?)(?:\s+\[airflow\.task\.operators\..*)?$")
_RUNNING = re.compile(r"\] running \S+ -m tasks\.\w+")
_FAILED = re.compile(r"Task failed|Marking task as FAILED|DagRun failed|Traceback")
AIRFLOW_RUNS_EXIT = "[airflow_runs] exit "


def demo_environment(
    args: argparse.Namespace, api_url: str, *, external: bool = False
) -> dict[str, str]:
    """The environment of the Airflow CLI and, through it, of every task."""
    env = dict(os.environ)
    defaults = {
        "AIRFLOW_HOME": str(AIRFLOW_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "PIPELINE_RUNTIME": "local",
        "PIPELINE_TASKS_PYTHON": str(TASKS_PYTHON),
        "PIPELINE_RETRIES": "0",  # a demo shows a failure at once instead of retrying it
        # every dags test runs in one Airflow process: each task's libraries imported once, in
        # a launcher per task that forks its runs (the local runtime's default;
        # PIPELINE_LOCAL_PRELOAD=0: a fresh interpreter per task, as a pod starts)
        "PIPELINE_LOCAL_PRELOAD": "1",
        "PIPELINE_SCHEDULE": "none",
        "GROUP_NUMBER": str(args.group_number),
        "DAY": args.day,
        **DEMO_STORES,
        # the volume rule scaled like the data (10,000 rows at full scale; an external API
        # serves the real volumes)
        "MIN_TRAIN_ROWS": str(
            FULL_SCALE_MIN_TRAIN_ROWS
            if external
            else max(1, round(FULL_SCALE_MIN_TRAIN_ROWS * args.scale))
        ),
        # the search's size follows the data (TRAIN_SEARCH_ROW_BUDGET rows' worth of trials):
        # at 2% every batch deserves 15-210 trials of 1,000-14,000 rows, whose cost is their
        # trees' fixed overhead more than their rows, so the count stops at 4, the full-scale
        # count. No wall clock: the models, hence the decisions, do not depend on the load.
        "TRAIN_MAX_TRIALS": "4",
        # the monitor's window ends this long before it runs; the demo waits for serving's log
        "MONITOR_SETTLE_SECONDS": "1",
        "LOG_FORMAT": "console",
    }
    for name, value in defaults.items():
        env.setdefault(name, value)
    env["DATA_API_URL"] = api_url  # the simulator this demo started, or the external API
    return env


@contextmanager
def external_api(url: str) -> Iterator[str]:
    """An API someone else runs: nothing started, nothing asked (a /data call moves its cursor).

    Only a TCP connect, so that a wrong URL fails here with a reason instead of in fetch.
    """
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"DATA_API_URL {url!r} is not an http(s) URL with a host: use e.g. "
            "http://10.43.100.103:8080 (scheme, host, port)"
        )
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname, port), timeout=5).close()
    except OSError as exc:
        raise ConnectionError(
            f"nothing accepts connections at {url} ({exc}); check DATA_API_URL and that the "
            "API is up"
        ) from exc
    say(
        f"data API: {url} (external: no simulator started; MIN_TRAIN_ROWS "
        f"{os.environ.get('MIN_TRAIN_ROWS', FULL_SCALE_MIN_TRAIN_ROWS)}, the real API's volumes: "
        "set MIN_TRAIN_ROWS=200 for a simulator at scale 0.02)"
    )
    yield url.rstrip("/")


@contextmanager
def data_api(scale: float, seed: int) -> Iterator[str]:
    """Start the simulator on a free port; yield its URL; stop it afterwards."""
    port = free_port()
    log_path = LOGS / "data_api.log"
    command = [str(TASKS_PYTHON), "-m", "data_api", "--port", str(port), "--scale", str(scale)]
    command += ["--seed", str(seed)]
    url = f"http://127.0.0.1:{port}"
    with background(
        "data API", command, dict(os.environ), f"{url}/health", timeout=90, log_path=log_path
    ):
        say(f"data API simulator: {url} (scale {scale}, seed {seed}; log {log_path})")
        yield url
    say("data API simulator stopped")


class Airflow:
    """One Airflow process for every ``airflow dags test`` of the demo (``scripts/airflow_runs.py``).

    :meth:`run` is ``airflow <args>`` (Airflow's own parser and entry point, the same logs),
    without paying Airflow's start-up again for every DAG run.
    """

    def __init__(self, env: dict[str, str]) -> None:
        #: wall seconds of the task processes (from the operator's "running" to its "exit" line)
        self.task_seconds = 0.0
        self.process = subprocess.Popen(
            [str(AIRFLOW_PY), str(REPO / "scripts" / "airflow_runs.py")],
            cwd=REPO,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )

    def run(self, args: list[str], log_path: Path) -> int:
        """Run ``airflow <args>``; show each task's start, summary and end as they come."""
        started = time.monotonic()
        current, rss, task_started = "-", "", started
        stdin, stdout = self.process.stdin, self.process.stdout
        assert stdin is not None and stdout is not None
        stdin.write(json.dumps(args) + "\n")
        stdin.flush()
        with log_path.open("w") as log:
            for line in stdout:
                if AIRFLOW_RUNS_EXIT in line:  # after a line without its end, if any
                    before, _, code = line.partition(AIRFLOW_RUNS_EXIT)
                    log.write(before)
                    return int(code.split()[0])
                log.write(line)
                if match := _STARTING.search(line):
                    current = match.group(1)
                elif match := _STDOUT.search(line):
                    say(f"    {current:<15} {match.group(1).strip()}")
                elif _RUNNING.search(line):
                    task_started = time.monotonic()
                elif match := _RSS.search(line):
                    self.task_seconds += time.monotonic() - task_started
                    rss = f", peak RSS {int(match.group(1)):,} MiB"
                elif match := _ENDED.search(line):
                    elapsed = time.monotonic() - started
                    say(f"    {match.group(1):<15} done ({elapsed:5.0f} s{rss})")
                    rss = ""
        code = self.process.wait()
        raise RuntimeError(
            f"the Airflow process ended (exit {code}) during `airflow {' '.join(args)}`"
        )

    def close(self) -> None:
        """End of input ends the process; terminate it if it does not end in time."""
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.terminate()
            self.process.wait(timeout=30)


@contextmanager
def airflow_session(env: dict[str, str]) -> Iterator[Airflow]:
    session = Airflow(env)
    try:
        yield session
    except BaseException:
        session.process.terminate()
        raise
    finally:
        session.close()


class Clock:
    """Where the demo's wall time goes, phase by phase, and the CPU time of all its processes."""

    def __init__(self) -> None:
        self.started = self.last = time.monotonic()
        self.phases: dict[str, float] = {}

    def lap(self, phase: str) -> None:
        """The time since the last lap belongs to ``phase``."""
        now = time.monotonic()
        self.phases[phase] = self.phases.get(phase, 0.0) + now - self.last
        self.last = now

    def total(self) -> float:
        return time.monotonic() - self.started

    def summary(self, task_seconds: float) -> str:
        """One line: each phase's seconds (the DAG runs split into task processes and Airflow)."""
        parts = []
        for phase, seconds in self.phases.items():
            if phase == "DAG runs":
                parts.append(
                    f"DAG runs {seconds:.0f} s (task processes {task_seconds:.0f} s, Airflow "
                    f"{seconds - task_seconds:.0f} s)"
                )
            else:
                parts.append(f"{phase} {seconds:.0f} s")
        own = resource.getrusage(resource.RUSAGE_SELF)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
        return (
            f"where the time went: {', '.join(parts)}; CPU {cpu:.0f} s (this process and all "
            f"it started); load average {' '.join(f'{v:.1f}' for v in os.getloadavg())}"
        )


def migrate_airflow(env: dict[str, str]) -> None:
    if (AIRFLOW_HOME / "airflow.db").exists():
        return
    say(f"creating Airflow's metadata database in {AIRFLOW_HOME} (once)...")
    AIRFLOW_HOME.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [str(AIRFLOW), "db", "migrate"], env=env, cwd=REPO, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"airflow db migrate failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
        )


def exhausted(group_number: int, day: str) -> bool:
    from tasks.core.ledger import Ledger

    cursor = Ledger.open(os.environ["LEDGER_URL"]).cursor(group_number, day)
    return cursor is not None and cursor.exhausted_at is not None


def unfinished(group_number: int, day: str) -> dict[int, int]:
    """Batches a run started and did not finish (no record row): batch_id -> batch number."""
    from tasks.core.ledger import Ledger

    ledger = Ledger.open(os.environ["LEDGER_URL"])
    return {b.id: b.batch_number for b in ledger.unfinished_batches(group_number, day)}


def interruptions(before: dict[int, int], after: dict[int, int]) -> list[str]:
    """What became of the batches unfinished before the runs, and of those unfinished now."""
    lines = []
    for batch_id, number in before.items():
        if batch_id in after:
            lines.append(
                f"batch {number} (batch_id {batch_id}) was interrupted in an earlier run and is "
                "still not finished: see the failed run's log"
            )
        else:
            lines.append(f"batch {number} was interrupted in an earlier run; finished now")
    for batch_id, number in after.items():
        if batch_id not in before:
            lines.append(
                f"batch {number} (batch_id {batch_id}) was interrupted in this demo (no record "
                "row): the next run finishes it before taking a new batch"
            )
    return lines


def summaries(group_number: int, day: str) -> list[dict[str, Any]]:
    from tasks.core.ledger import Ledger
    from tasks.core.story import batch_summaries

    ledger = Ledger.open(os.environ["LEDGER_URL"])
    return batch_summaries(ledger, group_number, day)


def pending_live_drift_lines(env: dict[str, str]) -> list[str]:
    from tasks.core.ledger import Ledger
    from tasks.core.story import pending_live_drift

    return pending_live_drift(
        Ledger.open(os.environ["LEDGER_URL"]), env.get("MODEL_NAME", "realtor-price")
    )


def _money(value: Any) -> str:
    return f"${value:,.0f}" if isinstance(value, int | float) else "-"


def print_table(rows: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="What happened to every batch (read back from the ledger)", show_lines=True)
    for column in ("batch", "rows", "validation", "drift share", "decision and reasons"):
        table.add_column(column, overflow="fold")
    for column in ("model", "MAE", "promoted and why"):
        table.add_column(column, overflow="fold")
    for row in rows:
        validation = f"{row['validation_status'] or '-'} ({row['validation_outcome'] or '-'})"
        if row["rows_dropped"]:
            validation += f"\n{row['rows_dropped']:,} rows dropped"
        share = row["drift_share"]
        decision = row["decision"] or "-"
        if row["decision_reasons"]:
            decision += ":\n" + "\n".join(f"- {r}" for r in row["decision_reasons"])
        promoted = "-" if row["promoted"] is None else ("yes" if row["promoted"] else "no")
        if row["promotion_reasons"]:
            promoted += ":\n" + "\n".join(f"- {r}" for r in row["promotion_reasons"])
        table.add_row(
            str(row["batch_number"]),
            f"{row['rows']:,}",
            validation,
            "-" if share is None else f"{share:.2f}",
            decision,
            f"v{row['model_version']}" if row["model_version"] else "-",
            _money(row["mae"])
            + (f"\n(baseline {_money(row['baseline_mae'])})" if row["baseline_mae"] else ""),
            promoted,
        )
    Console(width=max(140, shutil.get_terminal_size().columns)).print(table)


def fresh_start() -> None:
    for path in (VAR / "ledger.db", VAR / "mlflow.db", VAR / "lake", VAR / "mlartifacts"):
        for candidate in (path, *path.parent.glob(path.name + "-*")):  # SQLite's -wal, -shm
            if candidate.is_dir():
                shutil.rmtree(candidate)
            elif candidate.exists():
                candidate.unlink()
    say("removed the previous demo's ledger, lake and MLflow store (--fresh)")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--scale", type=float, default=0.02, help="rows per batch vs the real API")
    parser.add_argument("--seed", type=int, default=42, help="the simulator's data seed")
    parser.add_argument("--group-number", type=int, default=1)
    parser.add_argument("--day", default="Tuesday")
    parser.add_argument("--max-runs", type=int, default=10, help="stop after this many runs")
    parser.add_argument("--fresh", action="store_true", help="start from an empty ledger/store")
    parser.add_argument(
        "--no-serving", action="store_true", help="do not start serving at the end to try the model"
    )
    parser.add_argument(
        "--no-live",
        action="store_true",
        help="no live act: every batch at once, no live traffic, no monitor (see scripts/demo_live.py)",
    )
    parser.add_argument(
        "--api-url",
        default=os.environ.get("DATA_API_URL") or None,
        help="an external data API (default: DATA_API_URL; unset: start the simulator)",
    )
    parser.add_argument(
        "--replay",
        action="store_true",
        help="with an external API, restart its group and day first (the simulator: always)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for path, what in (
        (AIRFLOW, "the Airflow env (.venv-airflow)"),
        (TASKS_PYTHON, "the tasks env (.venv)"),
    ):
        if not path.exists():
            say(f"{path} is missing: create {what} first (make setup)")
            return 2
    if args.fresh:
        fresh_start()
    VAR.mkdir(exist_ok=True)
    conf = json.dumps({"group_number": args.group_number, "day": args.day})
    clock = Clock()
    external = args.api_url is not None
    api = external_api(args.api_url) if external else data_api(args.scale, args.seed)
    with api as api_url:
        clock.lap("data API start")
        env = demo_environment(args, api_url, external=external)
        os.environ.update({k: env[k] for k in ("LEDGER_URL", "STORAGE_URL")})
        migrate_airflow(env)
        LOGS.mkdir(parents=True, exist_ok=True)
        clock.lap("Airflow metadata")
        if env["PIPELINE_LOCAL_PRELOAD"].strip().lower() in ("1", "true", "yes", "on"):
            say(
                "each task runs as its own process, forked from a launcher that imported the "
                "task's libraries once (PIPELINE_LOCAL_PRELOAD=0: a fresh interpreter each time)"
            )
        waiting = unfinished(args.group_number, args.day)
        for batch_id, number in waiting.items():
            say(
                f"batch {number} (batch_id {batch_id}) was interrupted in an earlier run (it has "
                "no record row): the next run finishes it before taking a new batch"
            )
        with airflow_session(env) as airflow:
            if not external or args.replay:
                say("realtor_replay: the API and the ledger cursor start from the first batch")
                if airflow.run(["dags", "test", "realtor_replay", "-c", conf], LOGS / "replay.log"):
                    say(f"realtor_replay failed: see {LOGS / 'replay.log'}")
                    return 1
            held_back = not external and not args.no_serving and not args.no_live
            last_run = min(args.max_runs, len(SCENARIOS) - 1) if held_back else args.max_runs
            if held_back:
                say(
                    f"the first {last_run} of the simulator's {len(SCENARIOS)} batches now; the "
                    "last one waits for the live traffic's act (--no-live: all of them now)"
                )
            for run in range(1, last_run + 1):
                log_path = LOGS / f"run-{run}.log"
                say(f"realtor_pipeline run {run} (airflow dags test; log {log_path})")
                if airflow.run(["dags", "test", "realtor_pipeline", "-c", conf], log_path):
                    tail = "".join(log_path.read_text(errors="replace").splitlines(True)[-40:])
                    say(f"run {run} FAILED; last lines of {log_path}:\n{tail}")
                    for line in interruptions(waiting, unfinished(args.group_number, args.day)):
                        say(line)
                    return 1
                if exhausted(args.group_number, args.day):
                    batches, runs = len(summaries(args.group_number, args.day)), run - 1
                    extra = "" if runs == batches else f" in {runs} runs (see the fetch lines)"
                    say(f"the data API is exhausted after {batches} batches{extra}")
                    break
            else:
                if not held_back:
                    say(f"stopped after --max-runs {args.max_runs} runs (the API is not exhausted)")
            clock.lap("DAG runs")
            dag_task_seconds = airflow.task_seconds  # the live act's runs count as its own
            windows: list[WindowLine] = []
            if not args.no_serving and not args.no_live:
                try:
                    windows, _ = live_act(
                        airflow, env, json.loads(conf), LOGS, AIRFLOW_HOME / "airflow.db"
                    )
                except (RuntimeError, TimeoutError, OSError) as exc:
                    say(f"the live act FAILED: {exc}")
                    return 1
                clock.lap("live act")
    clock.lap("data API stop")
    print_table(summaries(args.group_number, args.day))
    if windows:
        print_windows(windows)
    for line in pending_live_drift_lines(env):
        say(line)
    for line in interruptions(waiting, unfinished(args.group_number, args.day)):
        say(line)
    clock.lap("table")
    if args.no_serving:
        say("serving skipped (--no-serving)")
    elif args.no_live:
        try:
            serve_and_try(env)
        except (RuntimeError, TimeoutError, OSError) as exc:
            say(f"serving FAILED: {exc}")
            return 1
        clock.lap("serving")
    say(clock.summary(dag_task_seconds))
    say(f"demo done in {clock.total():.0f} s; Airflow logs: {AIRFLOW_HOME / 'logs'}")
    say("browse the runs: `make airflow`, then http://127.0.0.1:8080 (see docs/pipeline.md)")
    say("use the model: `make serve` keeps serving and the UI running on these stores")
    return 0


if __name__ == "__main__":
    sys.exit(main())

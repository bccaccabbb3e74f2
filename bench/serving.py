"""Serving against ``mlflow models serve`` on the same registered model, plus in-process floors.

Starts both services (one worker each: uvicorn's ``--workers`` above 1 leaves Nagle on, uvicorn
issue 3149, so the deployment scales by replicas) on the production model of ``make demo``'s
stores, and drives both with the same async httpx client in the same run, alternating service
by service within each scenario so a change of machine load hits both alike:

- single rows, closed loop, at 1, 8 and 32 connections: throughput, p50, p99;
- 1,000-row batches at 1 connection: rows per second, p50, p99;
- ``POST /explain`` of single rows at 1 connection (serving only): p50, p99.

In-process floors (the same model, loaded here): the registered model's own ``predict`` of one
row (``mlflow.pyfunc``), the trees alone (``HistGradientBoostingRegressor.predict`` on one
preprocessed row, scikit-learn's default threads and one thread), and the fast path's own cost
per row (``serving.fast_model``: preprocessing, the tree walk, both), and the explainer's.
Peak RSS of the service is its ``VmHWM`` (the kernel's high-water mark) at the end of the run.

Serving gets a temporary ledger and lake, so the benchmark's predictions do not land in the
demo's inference log; the model comes from the demo's MLflow store (``scripts/local_apps.py``'s
``DEMO_STORES``, which ``make demo`` uses), unless ``MLFLOW_TRACKING_URI`` is set.

    .venv/bin/python bench/serving.py                 # about 4 minutes
    .venv/bin/python bench/serving.py --seconds 5     # shorter scenarios
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import httpx  # noqa: E402

from bench import http_load  # noqa: E402
from bench.payloads import realistic_records  # noqa: E402
from scripts.local_apps import background, free_port, say  # noqa: E402

PYTHON = REPO / ".venv" / "bin" / "python"
MLFLOW = REPO / ".venv" / "bin" / "mlflow"
CONNECTIONS = (1, 8, 32)
BATCH_ROWS = 1000


# ------------------------------------------------------------------------------ the model


def model_environment() -> dict[str, str]:
    """MLflow of the demo's stores (or of the environment); exits if there is no model."""
    from scripts.local_apps import DEMO_STORES

    env = dict(os.environ)
    env.setdefault("MLFLOW_TRACKING_URI", DEMO_STORES["MLFLOW_TRACKING_URI"])
    # `mlflow models serve` runs `uvicorn` from the PATH: the one of this environment
    env["PATH"] = f"{PYTHON.parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def model_uri(env: dict[str, str], name: str, alias: str) -> tuple[str, str]:
    """``models:/name/version`` of the alias, and the version; exits with advice if absent."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    uri = env["MLFLOW_TRACKING_URI"]
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        raise SystemExit(f"No MLflow store at {uri}: run `make demo` first.")
    try:
        version = MlflowClient(uri, registry_uri=uri).get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        raise SystemExit(f"No {name}@{alias} in {uri} ({exc}): run `make demo` first.") from exc
    return f"models:/{name}/{version.version}", str(version.version)


# ------------------------------------------------------------------------------ floors


def _p50_ms(call: Callable[[], Any], repeat: int) -> float:
    call()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e3


def in_process_floors(uri: str, records: list[dict], env: dict[str, str]) -> dict[str, float]:
    """Median milliseconds of one-row calls in this process (see the module docstring)."""
    import datetime as dt

    import mlflow.pyfunc
    import mlflow.sklearn
    import numpy as np
    import pandas as pd
    from threadpoolctl import threadpool_limits

    from serving.explain import Explainer
    from serving.fast_model import compile_model, records_to_columns
    from tasks.core.model import feature_frame

    os.environ["MLFLOW_TRACKING_URI"] = env["MLFLOW_TRACKING_URI"]
    pyfunc = mlflow.pyfunc.load_model(uri)
    native = mlflow.sklearn.load_model(uri)
    fast = compile_model(native)
    explainer = Explainer.build(fast)
    typed = [
        {**r, "prev_sold_date": r["prev_sold_date"] and dt.date.fromisoformat(r["prev_sold_date"])}
        for r in records
    ]
    one_frame = feature_frame(pd.DataFrame(typed[:1]))
    one = records_to_columns(typed[:1])
    matrix = fast.transform(one)
    hgb = fast.regressor
    many = records_to_columns(typed[:BATCH_ROWS])
    floors = {
        "model_predict_1_row": _p50_ms(lambda: pyfunc.predict(one_frame), 40),
        "trees_1_row": _p50_ms(lambda: hgb.predict(matrix), 200),
    }
    with threadpool_limits(limits=1):
        floors["model_predict_1_row_1_thread"] = _p50_ms(lambda: pyfunc.predict(one_frame), 40)
        floors["trees_1_row_1_thread"] = _p50_ms(lambda: hgb.predict(matrix), 200)
    floors["fast_transform_1_row"] = _p50_ms(lambda: fast.transform(one), 500)
    floors["fast_trees_1_row"] = _p50_ms(lambda: fast.predict_log(matrix), 500)
    floors["fast_predict_1_row"] = _p50_ms(lambda: fast.predict(one), 500)
    floors["fast_predict_1000_rows"] = _p50_ms(lambda: fast.predict(many), 20)
    floors["explain_1_row"] = _p50_ms(lambda: explainer.explain(one), 100)
    floors["trees"] = float(len(hgb._predictors))
    check = np.asarray(pyfunc.predict(feature_frame(pd.DataFrame(typed[:200]))))
    floors["parity_max_relative"] = float(
        np.max(np.abs(fast.predict(records_to_columns(typed[:200])) - check) / check)
    )
    return floors


# ------------------------------------------------------------------------------ processes


def peak_rss_mib(pid: int) -> float:
    """The process's RSS high-water mark (VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import psutil

    return psutil.Process(pid).memory_info().rss / 2**20


def current_rss_mib(pid: int) -> float:
    import psutil

    return psutil.Process(pid).memory_info().rss / 2**20


# ------------------------------------------------------------------------------ load


@dataclass
class Target:
    name: str
    url: str
    predict_path: str
    wrap: Callable[[list[dict]], Any]  # records -> the JSON body this service takes
    pid: int = 0  # the service's process (its CPU time is measured with its children's)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its descendants so far (0 without a pid)."""
    import psutil

    if not pid:
        return 0.0
    root = psutil.Process(pid)
    total = 0.0
    for proc in [root, *root.children(recursive=True)]:
        try:
            times = proc.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


@dataclass
class Result:
    target: str
    scenario: str
    requests: int
    rows: int
    errors: int
    seconds: float
    latencies: list[float]
    server_cpu: float = 0.0  # CPU seconds the service used while measured
    client_cpu: float = 0.0  # CPU seconds this (client) process used while measured

    @property
    def server_cpu_ms_per_request(self) -> float:
        return self.server_cpu / self.requests * 1e3 if self.requests else float("nan")

    @property
    def client_cpu_ms_per_request(self) -> float:
        return self.client_cpu / self.requests * 1e3 if self.requests else float("nan")

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1e3


def closed_loop(
    target: Target,
    path: str,
    bodies: list[bytes],
    rows_per_body: int,
    connections: int,
    seconds: float,
    warmup: float,
    scenario: str,
) -> Result:
    """``connections`` clients, each sending its next body as soon as the last one answered."""
    requests = [http_load.encode_post(target.url, path, body) for body in bodies]
    cpu: dict[str, float] = {}

    async def measured() -> http_load.LoadResult:
        async def snapshot() -> None:
            await asyncio.sleep(warmup)
            cpu["server"] = cpu_seconds(target.pid)

        load, _ = await asyncio.gather(
            http_load.run(
                target.url, requests, connections=connections, seconds=seconds, warmup=warmup
            ),
            snapshot(),
        )
        return load

    load = run_async(measured())
    if load.first_error:
        say(f"  {target.name}: {load.errors} failed request(s), the first: {load.first_error}")
    return Result(
        target=target.name,
        scenario=scenario,
        requests=load.requests,
        rows=(load.requests - load.errors) * rows_per_body,
        errors=load.errors,
        seconds=load.seconds,
        latencies=load.latencies,
        server_cpu=cpu_seconds(target.pid) - cpu["server"],
        client_cpu=load.client_cpu,
    )


def run_async(coroutine: Any) -> Any:
    """The client's event loop: uvloop where installed (lighter), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


def pin(pid: int, cpus: set[int]) -> None:
    """Keep a process and its children on ``cpus`` (Linux), so client and service do not
    take turns on one core while the other idles."""
    import psutil

    root = psutil.Process(pid)
    for proc in [root, *root.children(recursive=True)]:
        try:
            proc.cpu_affinity(sorted(cpus))
        except psutil.Error:
            continue


async def warm_up(target: Target, bodies: list[bytes]) -> None:
    """Each body once, one after the other; every answer must be a 200."""
    headers = {"content-type": "application/json"}
    async with httpx.AsyncClient(base_url=target.url, timeout=120) as client:
        for body in bodies:
            answer = await client.post(target.predict_path, content=body, headers=headers)
            if answer.status_code != 200:
                raise SystemExit(f"{target.name}: HTTP {answer.status_code}: {answer.text[:300]}")


def run_scenarios(
    targets: list[Target],
    records: list[dict],
    seconds: float,
    warmup: float,
    connections_list: tuple[int, ...] = CONNECTIONS,
    single_only: bool = False,
) -> list[Result]:
    results: list[Result] = []
    singles = {t.name: [json.dumps(t.wrap([r])).encode() for r in records] for t in targets}
    batches = {
        t.name: [
            json.dumps(t.wrap(records[i : i + BATCH_ROWS])).encode()
            for i in range(0, len(records) - BATCH_ROWS + 1, BATCH_ROWS // 2)
        ]
        for t in targets
    }
    for target in targets:  # first requests pay lazy initialisation: not measured
        asyncio.run(warm_up(target, [*singles[target.name][:30], *batches[target.name][:2]]))
    for connections in connections_list:
        for target in targets:
            result = closed_loop(
                target,
                target.predict_path,
                singles[target.name],
                1,
                connections,
                seconds,
                warmup,
                f"1 row, {connections} conn",
            )
            report(result)
            results.append(result)
    if single_only:
        return results
    for target in targets:
        result = closed_loop(
            target,
            target.predict_path,
            batches[target.name],
            BATCH_ROWS,
            1,
            seconds,
            warmup,
            f"{BATCH_ROWS} rows, 1 conn",
        )
        report(result)
        results.append(result)
    serving = targets[0]
    explain_bodies = [json.dumps(r).encode() for r in records]
    result = closed_loop(
        serving, "/explain", explain_bodies, 1, 1, seconds, warmup, "/explain, 1 conn"
    )
    report(result)
    results.append(result)
    return results


def report(result: Result) -> None:
    say(
        f"  {result.target:>13} | {result.scenario:<20} | {result.per_second:8.1f} req/s | "
        f"{result.rows_per_second:9.0f} rows/s | p50 {result.percentile(0.5):7.2f} ms | "
        f"p99 {result.percentile(0.99):7.2f} ms | server CPU "
        f"{result.server_cpu_ms_per_request:6.2f} ms/req | client CPU "
        f"{result.client_cpu_ms_per_request:5.2f} ms/req | errors {result.errors}"
    )


# ------------------------------------------------------------------------------ main


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model-name", default="realtor-price")
    parser.add_argument("--alias", default="production")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds first")
    parser.add_argument("--records", type=int, default=3000, help="distinct records sent")
    parser.add_argument("--skip-mlflow", action="store_true", help="serving only")
    parser.add_argument(
        "--connections",
        type=lambda text: tuple(int(c) for c in text.split(",")),
        default=CONNECTIONS,
        help="connection counts of the single-row scenarios, e.g. 8 (default 1,8,32)",
    )
    parser.add_argument(
        "--single-only",
        action="store_true",
        help="only the single-row scenarios: no floors, no 1,000-row batches, no /explain "
        "(for repeated A/B runs of two checkouts: run from each checkout's folder, whose "
        "`serving` package `python -m serving` then starts)",
    )
    parser.add_argument(
        "--no-pin",
        dest="pin",
        action="store_false",
        help="let the kernel place client and services (default: services on CPU 0, "
        "this client on the others, when there are at least 2)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    env = model_environment()
    uri, version = model_uri(env, args.model_name, args.alias)
    load_before = os.getloadavg()
    say(f"model {args.model_name}@{args.alias} = version {version} ({env['MLFLOW_TRACKING_URI']})")
    say(f"load average before: {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}")
    records = realistic_records(args.records)

    floors: dict[str, float] = {}
    if not args.single_only:
        say("in-process floors (median ms of one call):")
        floors = in_process_floors(uri, records, env)
        for key, value in floors.items():
            say(f"  {key:32s} {value:10.4g}")

    workdir = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    serving_port, mlflow_port = free_port(), free_port()
    serving_env = {
        **env,
        "MODEL_NAME": args.model_name,
        "MODEL_ALIAS": args.alias,
        "SERVING_PORT": str(serving_port),
        "LEDGER_URL": f"sqlite:///{workdir / 'ledger.db'}",
        "STORAGE_URL": (workdir / "lake").as_uri(),
        "LOG_FORMAT": "json",
        "SERVING_LOG_LEVEL": "WARNING",
    }
    (workdir / "lake").mkdir()
    serving_cmd = [str(PYTHON), "-m", "serving"]
    mlflow_cmd = [str(MLFLOW), "models", "serve", "-m", f"models:/{args.model_name}@{args.alias}"]
    mlflow_cmd += ["--env-manager", "local", "-w", "1", "-h", "127.0.0.1", "-p", str(mlflow_port)]
    serving = Target("serving", f"http://127.0.0.1:{serving_port}", "/predict", lambda rows: rows)
    mlflow_target = Target(
        "mlflow serve",
        f"http://127.0.0.1:{mlflow_port}",
        "/invocations",
        lambda rows: {"dataframe_records": rows},
    )
    with background(
        "serving",
        serving_cmd,
        serving_env,
        f"{serving.url}/ready",
        timeout=240,
        log_path=workdir / "serving.log",
    ) as served:
        serving.pid = served.pid
        pinned = args.pin and (os.cpu_count() or 1) >= 2
        if pinned:
            others = set(range(1, os.cpu_count() or 2))
            pin(served.pid, {0})
            os.sched_setaffinity(0, others)
            say(f"pinned: services on CPU 0, this client on CPU {sorted(others)}")
        say(f"serving ready (pid {served.pid}), RSS {current_rss_mib(served.pid):.0f} MiB")
        targets = [serving]
        if args.skip_mlflow:
            results = run_scenarios(
                targets, records, args.seconds, args.warmup, args.connections, args.single_only
            )
        else:
            with background(
                "mlflow models serve",
                mlflow_cmd,
                env,
                f"{mlflow_target.url}/ping",
                timeout=240,
                log_path=workdir / "mlflow.log",
            ) as mlflow_process:
                mlflow_target.pid = mlflow_process.pid
                if pinned:
                    pin(mlflow_process.pid, {0})
                say("mlflow models serve ready")
                results = run_scenarios(
                    [serving, mlflow_target],
                    records,
                    args.seconds,
                    args.warmup,
                    args.connections,
                    args.single_only,
                )
        peak = peak_rss_mib(served.pid)
        rss_end = current_rss_mib(served.pid)
    load_after = os.getloadavg()
    say(f"serving peak RSS {peak:.0f} MiB (at the end {rss_end:.0f} MiB)")
    say(f"load average after: {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")
    say("")
    say(markdown_table(results))
    say("")
    say(verdicts(results, floors))
    say(f"logs: {workdir}")
    return 0


def markdown_table(results: list[Result]) -> str:
    lines = [
        "| scenario | service | requests/s | rows/s | p50 ms | p99 ms | server CPU ms/req "
        "| errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.scenario} | {r.target} | {r.per_second:,.1f} | {r.rows_per_second:,.0f} | "
            f"{r.percentile(0.5):.2f} | {r.percentile(0.99):.2f} | "
            f"{r.server_cpu_ms_per_request:.2f} | {r.errors} |"
        )
    return "\n".join(lines)


def verdicts(results: list[Result], floors: dict[str, float]) -> str:
    """The issue's targets, each with the figures it compares."""
    by = {(r.target, r.scenario): r for r in results}
    lines = []
    s8, m8 = by.get(("serving", "1 row, 8 conn")), by.get(("mlflow serve", "1 row, 8 conn"))
    if s8 and m8 and m8.per_second:
        ratio = s8.per_second / m8.per_second
        lines.append(f"- throughput at 8 connections: {ratio:.1f}x mlflow's (target >= 10x)")
    if s8:
        lines.append(f"- p99 at 8 connections: {s8.percentile(0.99):.2f} ms (target < 10 ms)")
    explain = by.get(("serving", "/explain, 1 conn"))
    if explain:
        lines.append(f"- /explain p50: {explain.percentile(0.5):.2f} ms (target < 20 ms)")
    s1 = by.get(("serving", "1 row, 1 conn"))
    if s1 and floors:
        floor = floors["trees_1_row"] + floors["fast_transform_1_row"]
        lines.append(
            f"- p50 at 1 connection: {s1.percentile(0.5):.2f} ms; trees-alone floor "
            f"{floors['trees_1_row']:.2f} ms + fast path preprocessing "
            f"{floors['fast_transform_1_row']:.2f} ms = {floor:.2f} ms (target: within 1 ms); "
            f"the fast path's whole predict is {floors['fast_predict_1_row']:.2f} ms"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())

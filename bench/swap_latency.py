"""What a model swap costs the requests in flight: steady, three swaps, three challenger loads.

One ``python -m serving`` on the full-scale model (``bench/swap_store.py``: batches 1-3 at full
scale, four versions), its registry behind ``mlflow server`` over HTTP as in every deployment
(``--registry sqlite``: the store opened in serving's own process instead), driven by ``wrk`` at
8 connections (single-record ``POST /predict``, 200 distinct realistic bodies). Each round runs
three phases of the same length; ``--rounds`` rounds alternate them, so a drift of the machine
over the session touches every phase alike:

- steady: nothing happens but requests;
- swaps: the ``production`` alias moves v2 -> v4 -> v3 -> v2, each move as soon as the last
  version is served (``/model``'s ``version``);
- challengers: the ``challenger`` alias (``SERVING_CHALLENGER_ALIAS``) moves to v4, v3, v1,
  each as soon as the last one is held (``/model``'s ``challenger.version``); it is removed
  before the next round's steady phase, so steady holds one model.

Each phase reports requests per second, p50/p99/max latency and failures (wrk's connect, read,
write, timeout errors and non-2xx answers), and the service's RSS: ``VmRSS`` after the phase
and ``VmHWM`` (the kernel's high-water mark) so far, so the challenger phase shows two models
held against one. A client polls ``/model`` every 0.2 s in every phase (the same load in each).
The verdicts compare each phase with its own round's steady phase; the summary gives the median
ratio over the rounds. ``--in-process`` runs steady and swaps again on a second service with
``SERVING_PREPARE_IN_WORKER=false`` (the path before issue 21), for comparison. The service's
environment passes through, so ``SERVING_PREPARE_DUTY_CYCLE=0.3 python bench/...`` measures
that setting.

    .venv/bin/python bench/swap_latency.py                    # ~7 minutes (+3 for the store)
    .venv/bin/python bench/swap_latency.py --seconds 30 --rounds 1 --in-process
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import statistics  # noqa: E402

import httpx  # noqa: E402

from bench.payloads import realistic_records  # noqa: E402
from bench.serving import current_rss_mib, free_port, peak_rss_mib, say  # noqa: E402
from bench.swap_store import ensure_store  # noqa: E402
from scripts.local_apps import background  # noqa: E402

PYTHON = REPO / ".venv" / "bin" / "python"
SWAPS = ("4", "3", "2")  # production starts on v2
CHALLENGERS = ("4", "3", "1")

LUA = """
local bodies = {%s}
local i = 0
request = function()
  i = i + 1
  return wrk.format("POST", "/predict", {["Content-Type"] = "application/json"},
                    bodies[(i %% #bodies) + 1])
end
done = function(s, latency, requests)
  io.write(string.format('WRKJSON {"requests": %%d, "duration_us": %%d, "connect": %%d, ' ..
    '"read": %%d, "write": %%d, "status": %%d, "timeout": %%d, "p50_us": %%d, "p99_us": %%d, ' ..
    '"max_us": %%d}\\n', s.requests, s.duration, s.errors.connect, s.errors.read,
    s.errors.write, s.errors.status, s.errors.timeout, latency:percentile(50),
    latency:percentile(99), latency.max))
end
"""


@dataclass
class Phase:
    name: str
    wrk: dict = field(default_factory=dict)
    events: list[str] = field(default_factory=list)
    rss_mib: float = 0.0
    peak_mib: float = 0.0
    load: tuple[float, float] = (0.0, 0.0)
    children_mib: float = 0.0  # the kept preparation worker (once one was started)

    @property
    def per_second(self) -> float:
        return self.wrk["requests"] / (self.wrk["duration_us"] / 1e6)

    @property
    def failures(self) -> int:
        keys = ("connect", "read", "write", "status", "timeout")
        return sum(self.wrk[k] for k in keys)

    def ms(self, key: str) -> float:
        return self.wrk[key] / 1000


def lua_script(directory: Path) -> Path:
    bodies = [json.dumps(r, separators=(",", ":")) for r in realistic_records(200)]
    script = directory / "predict.lua"
    script.write_text(LUA % ",".join(f"[==[{b}]==]" for b in bodies))
    return script


def wrk(url: str, script: Path, seconds: float, connections: int) -> subprocess.Popen[str]:
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds:g}s", "-s", str(script), url]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wrk_result(process: subprocess.Popen[str]) -> dict:
    out, _ = process.communicate()
    for line in out.splitlines():
        if line.startswith("WRKJSON "):
            return json.loads(line.removeprefix("WRKJSON "))
    raise SystemExit(f"wrk gave no summary:\n{out}")


class ModelPoller:
    """GET /model every 0.2 s (in every phase alike); remembers the served version."""

    def __init__(self, url: str) -> None:
        self.url, self.version, self._stop = url, None, threading.Event()
        self.challenger: str | None = None
        self.document: dict = {}
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self._stop.wait(0.2):
                try:
                    self.document = client.get(f"{self.url}/model").json()
                    self.version = self.document.get("version")
                    self.challenger = (self.document.get("challenger") or {}).get("version")
                except httpx.HTTPError:
                    pass

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def children_rss_mib(pid: int) -> float:
    import psutil

    return sum(c.memory_info().rss for c in psutil.Process(pid).children(recursive=True)) / 2**20


def set_alias(tracking_uri: str, name: str, alias: str, version: str) -> None:
    from mlflow import MlflowClient

    MlflowClient(tracking_uri, registry_uri=tracking_uri).set_registered_model_alias(
        name, alias, version
    )


def drop_challenger(tracking_uri: str, name: str) -> None:
    from mlflow import MlflowClient

    with contextlib.suppress(Exception):  # absent: fine
        MlflowClient(tracking_uri, registry_uri=tracking_uri).delete_registered_model_alias(
            name, "challenger"
        )


def wait_for(url: str, check, seconds: float = 60.0) -> None:
    """Wait until ``check(/model's document)`` holds."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if check(httpx.get(f"{url}/model", timeout=5).json()):
                return
        time.sleep(0.2)
    raise SystemExit(f"{url}/model never showed the expected state within {seconds:g} s")


@contextlib.contextmanager
def registry_server(store: dict, workdir: Path, kind: str):
    """The registry serving polls: ``mlflow server`` on the store (http), or the store itself."""
    if kind == "sqlite":
        yield store["tracking_uri"]
        return
    port = free_port()
    command = [
        str(PYTHON.with_name("mlflow")), "server", "--host", "127.0.0.1", "--port", str(port),
        "--workers", "1", "--backend-store-uri", store["tracking_uri"],
    ]  # fmt: skip
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    url = f"http://127.0.0.1:{port}"
    with background(
        "mlflow", command, env, f"{url}/health", timeout=120, log_path=workdir / "mlflow.log"
    ):
        say(f"registry: mlflow server at {url} on {store['tracking_uri']}")
        yield url


def run_phase(name: str, ctx: dict, moves: tuple[str, ...], alias: str | None) -> Phase:
    """One wrk run; with ``alias``, move it through ``moves``, each after the last landed."""
    phase = Phase(name)
    load_before = os.getloadavg()[0]
    poller = ModelPoller(ctx["url"])
    time.sleep(0.5)
    runner = wrk(ctx["url"], ctx["script"], ctx["seconds"], ctx["connections"])
    started = time.monotonic()
    time.sleep(3)
    for version in moves if alias else ():
        moved = time.monotonic()
        set_alias(ctx["tracking_uri"], ctx["model_name"], alias, version)
        while time.monotonic() - started < ctx["seconds"]:
            if alias == "production" and poller.version == version:
                break
            if alias != "production" and poller.challenger == version:
                break
            time.sleep(0.1)
        else:
            phase.events.append(f"{alias} -> v{version}: not done within the phase")
            break
        held = poller.document if alias == "production" else poller.document.get("challenger")
        prep = (held or {}).get("preparation") or {}
        phase.events.append(
            f"{alias} -> v{version} in {time.monotonic() - moved:.1f} s"
            + (
                f" (handover {prep.get('handover_ms')} ms, worker CPU {prep.get('worker_cpu_s')}"
                f" s, {prep.get('where')})"
                if prep
                else ""
            )
        )
    phase.wrk = wrk_result(runner)
    poller.stop()
    phase.rss_mib = current_rss_mib(ctx["pid"])
    phase.peak_mib = peak_rss_mib(ctx["pid"])
    phase.children_mib = children_rss_mib(ctx["pid"])
    phase.load = (load_before, os.getloadavg()[0])
    say(f"{name}: {phase.per_second:.0f} req/s, p50 {phase.ms('p50_us'):.1f} ms, "
        f"p99 {phase.ms('p99_us'):.1f} ms, max {phase.ms('max_us'):.1f} ms, "
        f"{phase.failures} failed; RSS {phase.rss_mib:.0f} MiB, peak {phase.peak_mib:.0f} MiB, "
        f"its children {phase.children_mib:.0f} MiB; "
        f"load {phase.load[0]:.1f} -> {phase.load[1]:.1f}; {'; '.join(phase.events)}")  # fmt: skip
    return phase


def serve_and_measure(store: dict, args: argparse.Namespace, workdir: Path, **extra: str) -> list:
    uri, name = args.registry_uri, store["model_name"]
    set_alias(uri, name, "production", "2")
    drop_challenger(uri, name)
    port = free_port()
    run_dir = Path(tempfile.mkdtemp(prefix="swap-run-", dir=workdir))
    (run_dir / "lake").mkdir()
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": uri,
        "MODEL_NAME": name,
        "SERVING_PORT": str(port),
        "SERVING_POLL_INTERVAL_SECONDS": str(args.poll),
        "SERVING_CHALLENGER_ALIAS": "challenger",
        "LEDGER_URL": f"sqlite:///{run_dir / 'ledger.db'}",
        "STORAGE_URL": (run_dir / "lake").as_uri(),
        "SERVING_LOG_FORMAT": "json",
        **extra,
    }
    log_path = run_dir / "serving.log"
    url = f"http://127.0.0.1:{port}"
    with background(
        "serving", [str(PYTHON), "-m", "serving"], env, f"{url}/ready", timeout=300,
        log_path=log_path,
    ) as served:  # fmt: skip
        say(f"serving ready (pid {served.pid}), RSS {current_rss_mib(served.pid):.0f} MiB")
        ctx = {
            "url": url,
            "script": lua_script(run_dir),
            "seconds": args.seconds,
            "connections": args.connections,
            "tracking_uri": uri,
            "model_name": name,
            "log": log_path,
            "pid": served.pid,
        }
        wrk_result(wrk(url, ctx["script"], 5, args.connections))  # warm-up
        phases = []
        for round_number in range(1, args.rounds + 1):
            drop_challenger(uri, name)
            wait_for(url, lambda d: (d.get("challenger") or {}).get("version") is None)
            time.sleep(args.gap)  # the dropped challenger's pages are given back
            phases.append(run_phase(f"steady #{round_number}", ctx, (), None))
            phases.append(run_phase(f"three swaps #{round_number}", ctx, SWAPS, "production"))
            if not extra:
                phases.append(
                    run_phase(f"three challenger loads #{round_number}", ctx, CHALLENGERS,
                              "challenger")
                )  # fmt: skip
            time.sleep(args.gap)
    say(f"logs: {run_dir}")
    return phases


def table(phases: list[Phase]) -> str:
    lines = [
        "| phase | requests/s | p50 ms | p99 ms | max ms | failed | RSS after MiB | peak RSS MiB "
        "| children MiB | load average |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for p in phases:
        lines.append(
            f"| {p.name} | {p.per_second:,.0f} | {p.ms('p50_us'):.1f} | {p.ms('p99_us'):.1f} | "
            f"{p.ms('max_us'):.1f} | {p.failures} | {p.rss_mib:.0f} | {p.peak_mib:.0f} | "
            f"{p.children_mib:.0f} | {p.load[0]:.1f} -> {p.load[1]:.1f} |"
        )
    return "\n".join(lines)


def ratios(phases: list[Phase]) -> list[tuple[Phase, float, float, float]]:
    """Each non-steady phase with its p99, max and throughput against its round's steady."""
    out, steady = [], None
    for p in phases:
        if p.name.startswith("steady"):
            steady = p
            continue
        assert steady is not None
        out.append((
            p,
            p.ms("p99_us") / steady.ms("p99_us"),
            p.ms("max_us") / steady.ms("max_us"),
            p.per_second / steady.per_second,
        ))  # fmt: skip
    return out


def verdict(name: str, p99: float, top: float, rate: float, failed: int) -> str:
    return (
        f"{name}: p99 {p99:.2f}x steady (target <= 1.5x: {'met' if p99 <= 1.5 else 'MISSED'}"
        f"), max {top:.2f}x (<= 3x: {'met' if top <= 3 else 'MISSED'}), throughput "
        f"{rate:.0%} (>= 90%: {'met' if rate >= 0.9 else 'MISSED'}), {failed} failed"
    )


def verdicts(phases: list[Phase]) -> list[str]:
    rows = ratios(phases)
    out = [verdict(p.name, a, b, c, p.failures) for p, a, b, c in rows]
    for kind in ("three swaps", "three challenger loads"):
        mine = [r for r in rows if r[0].name.startswith(kind)]
        if len(mine) > 1:
            out.append(
                verdict(
                    f"{kind}, median of {len(mine)} rounds",
                    statistics.median(r[1] for r in mine),
                    statistics.median(r[2] for r in mine),
                    statistics.median(r[3] for r in mine),
                    sum(r[0].failures for r in mine),
                )
            )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "swap-bench")
    parser.add_argument("--seconds", type=float, default=60.0, help="each phase's length")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of the three phases")
    parser.add_argument("--gap", type=float, default=5.0, help="quiet seconds around a round")
    parser.add_argument("--registry", choices=("http", "sqlite"), default="http")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--poll", type=float, default=1.0, help="the service's poll interval")
    parser.add_argument("--in-process", action="store_true", help="also the path before")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install -y wrk")
    say(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    store = ensure_store(args.workdir)
    say(f"store: {json.dumps(store)}")
    with registry_server(store, args.workdir, args.registry) as registry_uri:
        args.registry_uri = registry_uri
        phases = serve_and_measure(store, args, args.workdir)
    say("")
    say(table(phases))
    for line in verdicts(phases):
        say(f"- {line}")
    if args.in_process:
        say("\nthe same, prepared in the serving process (SERVING_PREPARE_IN_WORKER=false):")
        with registry_server(store, args.workdir, args.registry) as registry_uri:
            args.registry_uri = registry_uri
            before = serve_and_measure(store, args, args.workdir, SERVING_PREPARE_IN_WORKER="false")
        say(table(before))
        for line in verdicts(before):
            say(f"- {line}")
    say(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

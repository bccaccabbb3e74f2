"""What a shadow challenger costs live requests: serving with ``SERVING_SHADOW`` on vs off.

Two ``python -m serving`` processes on the full-scale model (``bench/swap_store.py``), one
with the shadow off and one with ``SERVING_SHADOW=true`` (the challenger alias on another
version of the same fitted model: its own artifacts, fully scored and written, compared with
production's answers). Both log every prediction to one PostgreSQL ledger (a database created
for the run and dropped after it), as in production. ``wrk`` drives one service at a time at 8
connections (single-record ``POST /predict``, 200 distinct realistic bodies, as
``bench/swap_latency.py``), alternating off, on, off, on... (``--rounds``), so that a change of
the machine's load hits both modes alike. Each phase reports requests per second, p50/p99/max
and failures; the shadow's own counters (scored, dropped, failures) are read from ``/model``
after each "on" phase.

Targets (issue 19): throughput with the shadow on at least 80% of off, p99 at most 1.2x.

    .venv/bin/python bench/shadow_load.py                      # ~4 minutes (+3 for the store)
    .venv/bin/python bench/shadow_load.py --seconds 20 --rounds 2 --sample 0.25
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import httpx  # noqa: E402

from bench.serving import current_rss_mib, free_port, say  # noqa: E402
from bench.swap_latency import Phase, lua_script, set_alias, wrk, wrk_result  # noqa: E402
from bench.swap_store import ensure_store  # noqa: E402
from scripts.local_apps import background  # noqa: E402

PYTHON = REPO / ".venv" / "bin" / "python"
ADMIN_URL = os.environ.get(
    "TEST_POSTGRES_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
PRODUCTION, CHALLENGER = "2", "3"


@contextmanager
def ledger_database() -> Iterator[str]:
    """A fresh PostgreSQL database for the run's ledger, dropped afterwards."""
    from sqlalchemy import create_engine, text

    name = f"shadow_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def start(
    running: ExitStack, store: dict, ledger_url: str, run_dir: Path, mode: str, **extra: str
) -> dict:
    port = free_port()
    lake = run_dir / f"lake-{mode}"
    lake.mkdir()
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": store["tracking_uri"],
        "MODEL_NAME": store["model_name"],
        "SERVING_PORT": str(port),
        "LEDGER_URL": ledger_url,
        "STORAGE_URL": lake.as_uri(),
        "SERVING_LOG_FORMAT": "json",
        **extra,
    }
    url = f"http://127.0.0.1:{port}"
    served = running.enter_context(
        background(
            f"serving-{mode}",
            [str(PYTHON), "-m", "serving"],
            env,
            f"{url}/ready",
            timeout=300,
            log_path=run_dir / f"serving-{mode}.log",
        )
    )
    return {"mode": mode, "url": url, "pid": served.pid}


def wait_for_challenger(url: str, version: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        shadow = httpx.get(f"{url}/model", timeout=10).json().get("shadow") or {}
        if shadow.get("challenger_version") == version:
            return
        time.sleep(0.5)
    raise SystemExit(f"the shadow service did not hold v{version} within {timeout:.0f} s")


def shadow_status(url: str) -> dict:
    return httpx.get(f"{url}/model", timeout=10).json().get("shadow") or {}


def run_phase(service: dict, script: Path, seconds: float, connections: int) -> Phase:
    phase = Phase(service["mode"])
    before = os.getloadavg()[0]
    phase.wrk = wrk_result(wrk(service["url"], script, seconds, connections))
    phase.load = (before, os.getloadavg()[0])
    phase.rss_mib = current_rss_mib(service["pid"])
    if service["mode"] == "on":
        time.sleep(1.5)  # let the shadow drain what the phase queued
        status = shadow_status(service["url"])
        phase.events.append(
            f"shadow so far: scored {status.get('scored', 0):,}, dropped "
            f"{sum((status.get('dropped') or {}).values()):,}, failed {status.get('failures', 0):,}"
            f", queued {status.get('queued', 0):,}"
        )
    say(
        f"{phase.name}: {phase.per_second:,.0f} req/s, p50 {phase.ms('p50_us'):.2f} ms, p99 "
        f"{phase.ms('p99_us'):.2f} ms, max {phase.ms('max_us'):.1f} ms, {phase.failures} failed; "
        f"RSS {phase.rss_mib:.0f} MiB; load {phase.load[0]:.1f} -> {phase.load[1]:.1f}"
        + (f"; {phase.events[0]}" if phase.events else "")
    )
    return phase


def table(phases: list[Phase]) -> str:
    lines = [
        "| phase | requests/s | p50 ms | p99 ms | max ms | failed | RSS MiB | load average "
        "| shadow |",
        "|---|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for p in phases:
        lines.append(
            f"| {p.name} | {p.per_second:,.0f} | {p.ms('p50_us'):.2f} | {p.ms('p99_us'):.2f} | "
            f"{p.ms('max_us'):.1f} | {p.failures} | {p.rss_mib:.0f} | "
            f"{p.load[0]:.1f} -> {p.load[1]:.1f} | {'; '.join(p.events)} |"
        )
    return "\n".join(lines)


def verdict(phases: list[Phase]) -> str:
    off = [p for p in phases if p.name == "off"]
    on = [p for p in phases if p.name == "on"]
    rate = statistics.median(p.per_second for p in on) / statistics.median(
        p.per_second for p in off
    )
    p99 = statistics.median(p.ms("p99_us") for p in on) / statistics.median(
        p.ms("p99_us") for p in off
    )
    pairs = [
        f"{b.per_second / a.per_second:.0%} / {b.ms('p99_us') / a.ms('p99_us'):.2f}x"
        for a, b in zip(off, on, strict=True)
    ]
    return (
        f"shadow on vs off, each round (throughput / p99): {', '.join(pairs)}; "
        f"medians of {len(on)} rounds: throughput {rate:.0%} "
        f"(>= 80%: {'met' if rate >= 0.8 else 'MISSED'}), p99 {p99:.2f}x "
        f"(<= 1.2x: {'met' if p99 <= 1.2 else 'MISSED'}), "
        f"{sum(p.failures for p in phases)} failed requests"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "swap-bench")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--sample", type=float, default=1.0, help="SERVING_SHADOW_SAMPLE")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install -y wrk")
    say(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    store = ensure_store(args.workdir)
    say(f"store: {json.dumps(store)}")
    uri, name = store["tracking_uri"], store["model_name"]
    set_alias(uri, name, "production", PRODUCTION)
    set_alias(uri, name, "challenger", CHALLENGER)
    run_dir = Path(tempfile.mkdtemp(prefix="shadow-run-", dir=args.workdir))
    with ledger_database() as ledger_url, ExitStack() as running:
        off = start(running, store, ledger_url, run_dir, "off")
        on = start(
            running,
            store,
            ledger_url,
            run_dir,
            "on",
            SERVING_SHADOW="true",
            SERVING_SHADOW_SAMPLE=str(args.sample),
        )
        wait_for_challenger(on["url"], CHALLENGER)
        script = lua_script(run_dir)
        for service in (off, on):  # warm-up
            wrk_result(wrk(service["url"], script, 5, args.connections))
        phases = []
        for _ in range(args.rounds):
            for service in (off, on):
                phases.append(run_phase(service, script, args.seconds, args.connections))
        final = shadow_status(on["url"])
    with contextlib.suppress(Exception):
        from mlflow import MlflowClient

        MlflowClient(uri, registry_uri=uri).delete_registered_model_alias(name, "challenger")
    say("")
    say(table(phases))
    say(f"- {verdict(phases)}")
    say(f"- shadow at the end: {json.dumps(final)}")
    say(f"logs: {run_dir}")
    say(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

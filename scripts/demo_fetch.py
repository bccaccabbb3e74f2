"""The foundation demo: start the data API simulator, fetch every batch, print what was stored.

Embedded defaults only: local processes, a file:// lake and a SQLite ledger under var/.
It starts the simulator itself and stops it afterwards; run it again and every batch is
reported as a duplicate (nothing is stored twice).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

REPO = Path(__file__).resolve().parents[1]
console = Console()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_simulator(port: int, scale: float, seed: int, log: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "data_api", "--port", str(port), "--scale", str(scale)]
    process = subprocess.Popen(
        [*command, "--seed", str(seed)],
        cwd=REPO,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the data API simulator exited; see {log}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.2)
    process.terminate()
    raise SystemExit(f"the data API simulator did not start in 60 s; see {log}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=0.02, help="share of the course's sizes")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--var", type=Path, default=REPO / "var", help="local state folder")
    args = parser.parse_args(argv)

    args.var.mkdir(parents=True, exist_ok=True)
    port = free_port()
    xcom = Path(tempfile.mkdtemp(prefix="xcom-")) / "return.json"
    env = {
        **os.environ,
        "DATA_API_URL": f"http://127.0.0.1:{port}",
        "STORAGE_URL": os.environ.get("STORAGE_URL", f"file://{args.var / 'lake'}"),
        "LEDGER_URL": os.environ.get("LEDGER_URL", f"sqlite:///{args.var / 'ledger.db'}"),
        "XCOM_RETURN_PATH": str(xcom),
    }
    console.print(
        f"[bold]data API simulator[/] on port {port}, scale {args.scale}, seed {args.seed}"
    )
    simulator = start_simulator(port, args.scale, args.seed, args.var / "data_api.log")
    rows: list[dict] = []
    try:
        expected = len(httpx.get(f"http://127.0.0.1:{port}/scenarios").json().get("batches", []))
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} batches"),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            task = progress.add_task("fetching", total=expected or None)
            while True:
                started = time.perf_counter()
                done = subprocess.run(
                    [sys.executable, "-m", "tasks.fetch"],
                    cwd=REPO,
                    env=env,
                    capture_output=True,
                    text=True,
                )
                if done.returncode != 0:
                    console.print(done.stderr)
                    raise SystemExit(f"fetch failed (exit {done.returncode})")
                result = json.loads(xcom.read_text())
                if result["status"] == "exhausted":
                    break
                result["wall_seconds"] = time.perf_counter() - started
                rows.append(result)
                progress.update(task, advance=1, description=f"batch {result['batch_number']}")
    finally:
        simulator.terminate()
        simulator.wait(timeout=30)

    table = Table(title="Raw zone", show_lines=False)
    for column in ("batch", "status", "rows", "bytes", "sha256", "seconds"):
        table.add_column(
            column, justify="right" if column in ("rows", "bytes", "seconds") else "left"
        )
    for r in rows:
        table.add_row(
            str(r["batch_number"]),
            r["status"],
            f"{r['rows']:,}",
            f"{r['bytes']:,}",
            r["sha256"][:12],
            f"{r['wall_seconds']:.2f}",
        )
    table.add_row(
        "all", "", f"{sum(r['rows'] for r in rows):,}", f"{sum(r['bytes'] for r in rows):,}", "", ""
    )
    console.print(table)
    console.print(f"lake: {env['STORAGE_URL']}   ledger: {env['LEDGER_URL']}   API: exhausted")
    return 0


if __name__ == "__main__":
    sys.exit(main())

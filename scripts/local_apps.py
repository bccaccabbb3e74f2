"""Serving and the UI as local processes on the demo's stores: ``make serve``, and the end of ``make demo``.

``make serve`` starts the FastAPI service (``python -m serving``) and the Streamlit app
(``streamlit run ui/app.py``) on the stores ``make demo`` left in ``var/`` (ledger, lake,
MLflow), prints their URLs and keeps them running until Ctrl-C, then stops both.
``make demo`` calls :func:`serve_and_try` at its end: serving answers a few predictions and
one explanation, printed with the model version, and everything it started is stopped.
Environment variables already set win over these defaults (e.g. ``MLFLOW_TRACKING_URI``).
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
VAR = REPO / "var"
LOGS = VAR / "logs"
TASKS_PYTHON = REPO / ".venv" / "bin" / "python"

#: the demo's stores, one place for the demo, the pipeline's tasks, serving and the UI
DEMO_STORES = {
    "LEDGER_URL": f"sqlite:///{VAR / 'ledger.db'}",
    "STORAGE_URL": (VAR / "lake").as_uri(),
    "MLFLOW_TRACKING_URI": f"sqlite:///{VAR / 'mlflow.db'}",
    "MLFLOW_ARTIFACT_LOCATION": str(VAR / "mlartifacts"),
}

#: houses to price at the end of the demo: one of each status, a null, a state never seen
SAMPLE_HOUSES: tuple[dict[str, Any], ...] = (
    {
        "status": "for_sale",
        "bed": 3,
        "bath": 2,
        "acre_lot": 0.25,
        "city": "Austin",
        "state": "Texas",
        "zip_code": "78701",
        "house_size": 1800,
        "prev_sold_date": "2015-06-01",
    },
    {
        "status": "sold",
        "bed": 4,
        "bath": 3,
        "acre_lot": 0.12,
        "city": "San Diego",
        "state": "California",
        "zip_code": "92101",
        "house_size": 2400,
        "prev_sold_date": "2022-03-15",
    },
    {
        "status": "for_sale",
        "bed": 2,
        "bath": 1,
        "acre_lot": None,
        "city": "Anchorage",
        "state": "Alaska",
        "zip_code": "99501",
        "house_size": 950,
        "prev_sold_date": None,
    },
)


def say(message: str) -> None:
    print(message, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stores_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: this process's environment) with the demo's stores where unset."""
    env = dict(os.environ if base is None else base)
    for name, value in DEMO_STORES.items():
        env.setdefault(name, value)
    return env


@contextmanager
def background(
    name: str,
    command: Sequence[str],
    env: dict[str, str],
    ready_url: str,
    *,
    timeout: float = 120.0,
    accept: tuple[int, ...] = (200,),
    log_path: Path | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``command`` in its own process group, wait until ``ready_url`` answers with a
    status in ``accept``, yield it, and stop the whole group afterwards (also on Ctrl-C).
    Its output goes to ``log_path`` (default ``var/logs/<name>.log``)."""
    log_path = log_path or LOGS / f"{name}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            list(command), cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                tail = log_path.read_text(errors="replace").splitlines()[-15:]
                raise RuntimeError(
                    f"{name} exited with code {process.returncode}; last lines of {log_path}:\n"
                    + "\n".join(tail)
                )
            try:
                if httpx.get(ready_url, timeout=2).status_code in accept:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{name} did not answer {ready_url} in {timeout:.0f} s; see {log_path}"
                )
            time.sleep(0.3)
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


@contextmanager
def serving(env: dict[str, str], port: int | None = None) -> Iterator[str]:
    """``python -m serving`` on the stores of ``env``; yields its URL once a model is loaded."""
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    command = [str(TASKS_PYTHON), "-m", "serving", "--host", "127.0.0.1", "--port", str(port)]
    with background("serving", command, env, f"{url}/ready", timeout=180):
        yield url


@contextmanager
def ui(env: dict[str, str], serving_url: str, port: int | None = None) -> Iterator[str]:
    """``streamlit run ui/app.py`` reading serving at ``serving_url``; yields its URL."""
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        str(TASKS_PYTHON), "-m", "streamlit", "run", str(REPO / "ui" / "app.py"),
        "--server.address", "127.0.0.1", "--server.port", str(port),
        "--server.headless", "true", "--browser.gatherUsageStats", "false",
        "--client.toolbarMode", "viewer",
    ]  # fmt: skip
    env = {**env, "UI_SERVING_URL": serving_url}
    with background("ui", command, env, f"{url}/_stcore/health", timeout=120):
        yield url


def _house(record: dict[str, Any]) -> str:
    size = f"{record['house_size']:,} sq ft" if record.get("house_size") else "size unknown"
    return (
        f"{record['status']}, {record['bed']} bd / {record['bath']} ba, {size}, "
        f"{record['city']}, {record['state']}"
    )


def try_serving(url: str) -> None:
    """Price :data:`SAMPLE_HOUSES` in one request, explain the first one, print both."""
    with httpx.Client(base_url=url, timeout=30) as client:
        answer = client.post("/predict", json=list(SAMPLE_HOUSES))
        answer.raise_for_status()
        body = answer.json()
        say(f"serving {url}: {body['model_name']} v{body['model_version']} priced:")
        for record, price in zip(SAMPLE_HOUSES, body["prices"], strict=True):
            say(f"    ${price:>12,.0f}  {_house(record)}")
        explained = client.post("/explain", json=SAMPLE_HOUSES[0])
        explained.raise_for_status()
        why = explained.json()
    say(
        f"why ${why['price']:,.0f} for the first one: the model starts from a typical price of "
        f"${math.expm1(why['base_value']):,.0f} and each feature multiplies it "
        f"(SHAP in {why['space']}: {why['base_value']:.3f} + contributions = {why['log_price']:.3f}):"
    )
    ranked = sorted(why["contributions"].items(), key=lambda item: -abs(item[1]))
    for feature, value in ranked:
        say(f"    {feature:<15} {value:+.3f}  (x{math.exp(value):.2f})")


def serve_and_try(env: dict[str, str]) -> None:
    """Start serving on the demo's stores, send a few predictions and an explanation, stop."""
    say("serving: loading the production model (python -m serving)...")
    with serving(env) as url:
        try_serving(url)
    say("serving stopped")


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, allow_abbrev=False)
    parser.add_argument("--serving-port", type=int, default=8000)
    parser.add_argument("--ui-port", type=int, default=8501)
    args = parser.parse_args(argv)
    if not (VAR / "mlflow.db").exists() and "MLFLOW_TRACKING_URI" not in os.environ:
        say("no model yet: var/mlflow.db is missing. Run `make demo` first (it trains one).")
        return 2
    env = stores_env()
    signal.signal(signal.SIGTERM, _interrupt)  # kill or a supervisor stops both apps too
    with ExitStack() as stack:
        try:
            serving_url = stack.enter_context(serving(env, args.serving_port))
            ui_url = stack.enter_context(ui(env, serving_url, args.ui_port))
        except (RuntimeError, TimeoutError) as exc:
            say(f"could not start: {exc}")
            return 1
        say(f"serving: {serving_url}/docs (API), {serving_url}/model, {serving_url}/metrics")
        say(f"UI:      {ui_url}")
        say(f"logs:    {LOGS}/serving.log, {LOGS}/ui.log. Ctrl-C stops both.")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            say("stopping serving and the UI...")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``streamlit run ui/app.py`` as a real process on a free port, for the browser tests."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.processes import free_port, start_process, stop_process, wait_http

REPO = Path(__file__).resolve().parents[2]


@contextmanager
def streamlit_app(env: dict[str, str], log_path: Path) -> Iterator[str]:
    """The app's URL while it runs with ``env``; stopped afterwards."""
    port = free_port()
    process = start_process(
        [
            sys.executable, "-m", "streamlit", "run", str(REPO / "ui" / "app.py"),
            "--server.port", str(port), "--server.address", "127.0.0.1",
            "--server.headless", "true", "--browser.gatherUsageStats", "false",
            "--server.fileWatcherType", "none", "--client.toolbarMode", "minimal",
        ],
        log_path=log_path,
        env=env,
        cwd=REPO,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/_stcore/health", process, log_path=log_path, timeout=60)
        yield url
    finally:
        stop_process(process)

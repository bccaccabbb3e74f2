"""/docs and /redoc work with no network: their JS and CSS come from the fastapi-offline
package, served by the app itself. A real Chromium loads both pages from a real server with
every request to anything but the loopback blocked, and must render the operations (the
screenshots are left in var/test-artifacts/)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import uvicorn

from serving.app import create_app
from tests.serving.test_app import settings
from tests.support.browser import ARTIFACTS, browser_page
from tests.support.processes import free_port

LOOPBACK = {"127.0.0.1", "localhost", "[::1]", "::1"}


@contextmanager
def running_app(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    config = uvicorn.Config(
        create_app(settings(tmp_path, inference_log_enabled=False)),
        host="127.0.0.1",
        port=port,
        log_level="warning",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the app did not start in 20 s"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def test_docs_and_redoc_render_with_the_network_blocked(tmp_path: Path):
    blocked: list[str] = []
    with running_app(tmp_path) as url, browser_page(1280, 900) as page:

        def only_loopback(route) -> None:
            if urlsplit(route.request.url).hostname in LOOPBACK:
                route.continue_()
            else:
                blocked.append(route.request.url)
                route.abort()

        page.route("**/*", only_loopback)
        page.goto(f"{url}/docs")
        page.wait_for_selector(".opblock-summary-path", timeout=20_000)
        paths = page.locator(".opblock-summary-path").all_inner_texts()
        assert {"/predict", "/explain", "/model"} <= {p.strip() for p in paths}, paths
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "docs-offline.png"))

        page.goto(f"{url}/redoc")
        page.wait_for_selector("text=Prices for one record or a list of records", timeout=20_000)
        assert page.locator("h1").first.inner_text().startswith("Realtor price serving")
        page.screenshot(path=str(ARTIFACTS / "redoc-offline.png"))
    # ReDoc's bundle hard-codes its "powered by" logo's address; the logo is decoration (the
    # page above rendered without it). Anything else asked off this machine is a failure.
    decoration = {"https://cdn.redoc.ly/redoc/logo-mini.svg"}
    assert set(blocked) <= decoration, f"the docs asked for resources off this machine: {blocked}"

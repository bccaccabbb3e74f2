"""Headless Chromium for screenshots: Debian's ``chromium`` driven by Playwright.

Playwright's own browser download cannot work everywhere (no network to its CDN, or an OS it
does not support), so the tests drive the system's Chromium (``scripts/ensure_chromium.sh``
installs it). Off CI without it the screenshot tests skip, saying how to install it; with
``CI=true`` they fail.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from tests.support import programs

if TYPE_CHECKING:
    from playwright.sync_api import Page

REPO = Path(__file__).resolve().parents[2]
#: where test runs leave their screenshots (git-ignored with the rest of var/)
ARTIFACTS = REPO / "var" / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def chromium_path() -> str | None:
    """The system Chromium (``CHROMIUM_PATH`` wins), or None."""
    return programs.find_chromium()


def require_chromium() -> str:
    """Chromium's path; skips the test without it (fails on CI, where it must be there)."""
    return programs.require("chromium")


@contextmanager
def browser_page(width: int = 1440, height: int = 1000) -> Iterator[Page]:
    """A fresh page of a headless Chromium, closed afterwards."""
    from playwright.sync_api import sync_playwright

    executable = require_chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": width, "height": height})
            yield context.new_page()
        finally:
            browser.close()

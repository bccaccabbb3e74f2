"""Headless Chromium for screenshots: Debian's ``chromium`` driven by Playwright.

Playwright's own browser download cannot work everywhere (no network to its CDN, or an OS it
does not support), so the tests drive the system's Chromium (``scripts/ensure_chromium.sh``
installs it). Off CI without it the screenshot tests skip, saying how to install it; with
``CI=true`` they fail.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Page

REPO = Path(__file__).resolve().parents[2]
#: where test runs leave their screenshots (git-ignored with the rest of var/)
ARTIFACTS = REPO / "var" / "test-artifacts"
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
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
    for candidate in (os.environ.get("CHROMIUM_PATH"), *CHROMIUM_CANDIDATES):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    return found


def require_chromium() -> str:
    """Chromium's path; skips the test without it (fails on CI, where it must be there)."""
    path = chromium_path()
    if path is None:
        reason = (
            "no Chromium for the screenshot: install Debian's chromium "
            "(scripts/ensure_chromium.sh, run by `make setup` as root), or set CHROMIUM_PATH"
        )
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return path


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

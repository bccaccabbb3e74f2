"""The cluster checks read the pinned charts and schemas (cluster/tools/vendor.py finds them)."""

from __future__ import annotations

import pytest

from tests.support.programs import require


@pytest.fixture(scope="session")
def vendored() -> str:
    """The folder of the vendored charts and schemas; skips without it, fails on CI."""
    return require("charts and schemas")

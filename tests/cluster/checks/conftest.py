"""Each check's negative tests: a planted defect of its kind is caught, and the same objects
without it pass. Every check reads the pinned charts and schemas."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _charts_and_schemas(vendored: str) -> None:
    """The vendored charts and schemas (skips without them, fails on CI)."""

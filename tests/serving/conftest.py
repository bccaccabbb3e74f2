"""Fixtures of the serving tests that need no registry.

The real stack (``served_stack``: MLflow server, PostgreSQL ledger, S3 lake, a model trained
and promoted by the real steps; ``serving``: ``python -m serving`` on it) lives in
tests/conftest.py, shared with the UI tests: one training per session.
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def local_model():
    """A real model fitted in-process (500 synthetic rows), compiled and explained, as the
    loader would leave it: for tests of the request path that need no registry."""
    import datetime as dt

    from serving.decisions import fast_path_status
    from serving.explain import Explainer
    from serving.fast_model import compile_model
    from serving.state import LoadedModel, ModelMetadata
    from tasks.core.model import build_model, feature_frame, target
    from tests.tasks.factories import make_rows

    rows = make_rows(500, seed=5).to_pandas()
    fitted = build_model({"max_iter": 30}, seed=5).fit(feature_frame(rows), target(rows))
    fast = compile_model(fitted)
    return LoadedModel(
        name="local",
        version="7",
        alias="production",
        loaded_at=dt.datetime.now(dt.UTC),
        load_seconds=0.0,
        native=fitted,
        fast=fast,
        explainer=Explainer.build(fast),
        fast_path=fast_path_status(None, 0.0, None),
        metadata=ModelMetadata(run_id="local-run"),
    )

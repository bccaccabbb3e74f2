"""promote with a shadow challenger (issue 19), through the real command line and registry.

- train sets the alias ``challenger`` on the version it registers, and a promoted version
  keeps it (the session's model, trained and promoted by the real steps);
- with ``PROMOTE_MIN_SHADOW_REQUESTS`` and too few shadow rows, a challenger the holdout rule
  would promote is held: recorded, said plainly, the alias does not move; a re-run once the
  shadow has compared enough requests promotes it, with the comparison among its reasons.

The versions are copies of the session's model under a name of this module (no training
here); the challenger's training row is written as train leaves one, with a holdout MAE the
rule accepts, so the verdict turns on the shadow alone. The shadow rows are written as
serving's shadow writes them (that writer is tested in tests/serving/test_shadow*.py).
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from tasks.core.ledger import Ledger, Promotion, ShadowPrediction, Training
from tests.support.served_model import (
    ServedStack,
    copy_version,
    put_curated_batch,
    run_task,
    set_alias,
)

NAME = "realtor-shadow-promote"

pytestmark = [pytest.mark.postgres, pytest.mark.s3, pytest.mark.slow]


def test_train_sets_the_challenger_alias_and_a_promoted_version_keeps_it(
    served_stack: ServedStack,
):
    stack = served_stack.stack
    aliases = stack.client().get_registered_model(stack.model_name).aliases
    first = served_stack.first.model_version
    assert aliases["challenger"] == first and aliases["production"] == first


def test_a_short_shadow_holds_the_promotion_until_enough_requests_compared(
    served_stack: ServedStack,
):
    stack = served_stack.stack
    champion = copy_version(stack.tracking_uri, stack.model_name, "1", NAME)
    challenger = copy_version(stack.tracking_uri, stack.model_name, "1", NAME)
    set_alias(stack.tracking_uri, NAME, champion)
    env = {**stack.env, "MODEL_NAME": NAME, "PROMOTE_MIN_SHADOW_REQUESTS": "50"}
    batch_id = put_curated_batch(env, 400, seed=41, batch_number=401)
    ledger = Ledger.open(stack.ledger_url)
    try:
        with ledger.session() as session:
            session.add(
                Training(
                    batch_id=batch_id,
                    mlflow_run_id=served_stack.first.run_id,
                    model_name=NAME,
                    model_version=challenger,
                    training_batch_ids=[batch_id],
                    metrics={"mae": 1.0, "rmse": 1.0},
                    holdout_share=0.2,
                    reasons=["test: a challenger the holdout rule promotes"],
                )
            )
        held = run_task("promote", batch_id, env)
        assert (held["status"], held["promoted"], held["alias_moved"]) == ("held", False, False)
        assert held["reasons"][0].startswith("held: 0 of 50 shadow requests")
        assert f"re-run promote for batch {batch_id} later" in held["reasons"][0]
        assert any(
            r.startswith(
                f"shadow: no live request compared v{challenger} with production v{champion}"
            )
            for r in held["reasons"]
        )
        aliases = stack.client().get_registered_model(NAME).aliases
        assert aliases["production"] == champion
        with ledger.session() as session:
            recorded = session.scalar(select(Promotion).where(Promotion.batch_id == batch_id))
            assert recorded.promoted is False and recorded.held is True
            assert recorded.reasons == held["reasons"]

        start = dt.datetime(2026, 12, 7, 12, 3, tzinfo=dt.UTC)
        with ledger.session() as session:
            session.add_all(
                ShadowPrediction(
                    request_id=f"live-{i}",
                    row_index=0,
                    model_name=NAME,
                    production_version=champion,
                    challenger_version=challenger,
                    predicted_at=start + dt.timedelta(seconds=i),
                    production_price=300_000.0,
                    challenger_price=300_000.0 * (1.2 if i % 10 == 0 else 1.01),
                )
                for i in range(60)
            )
        promoted = run_task("promote", batch_id, env)
        assert (promoted["status"], promoted["promoted"], promoted["alias_moved"]) == (
            "promoted",
            True,
            True,
        )
        assert (
            "shadow: 60 live requests since 2026-12-07 12:03 UTC; median |Δ log10 price| 0.004; "
            "10.0% more than 10% apart" in promoted["reasons"]
        )
        aliases = stack.client().get_registered_model(NAME).aliases
        assert aliases["production"] == challenger
        with ledger.session() as session:
            rows = session.scalars(select(Promotion).where(Promotion.batch_id == batch_id)).all()
            assert [r.promoted for r in rows] == [True]  # the held row was replaced
        again = run_task("promote", batch_id, env)
        assert again["status"] == "existing" and again["promoted"] is True
    finally:
        ledger.engine.dispose()

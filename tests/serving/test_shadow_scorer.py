"""The shadow scorer (serving/shadow.py) in process: a real fitted model, a real ledger.

The HTTP path (a serving process with SERVING_SHADOW=true on a real registry) is in
tests/serving/test_shadow.py; here, what the predict worker and the shadow's thread do with
the rows: the bound drops and counts, the sample, the same-version rule, rows landing in
``shadow_predictions``, and a request the challenger cannot score costing only its own rows.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import create_engine, select

from bench.payloads import realistic_records
from serving.answers import cents
from serving.shadow import ShadowScorer, sampled, shadow_state
from serving.state import LoadedModel
from tasks.core.ledger import ShadowPrediction


def canonical(records: list[dict]) -> list[dict]:
    from serving.records import Record

    return [Record.model_validate(r).features() for r in records]


RECORDS = canonical(realistic_records(12, seed=3))


def scorer(
    ledger_url: str, challenger: LoadedModel | None, **given
) -> tuple[ShadowScorer, CollectorRegistry]:
    registry = CollectorRegistry()
    options = {
        "alias": "challenger",
        "sample": 1.0,
        "capacity": 1000,
        "batch_rows": 500,
        "flush_seconds": 0.05,
        "timeout_seconds": 5.0,
        **given,
    }
    return ShadowScorer(ledger_url, registry, lambda: challenger, **options), registry


def requests(model: LoadedModel, sizes: list[int]) -> tuple[list[str], list[list], list[list]]:
    """Request ids, records and the prices production paid, for requests of ``sizes`` rows."""
    ids, batches, paid, start = [], [], [], 0
    for number, size in enumerate(sizes):
        batch = RECORDS[start : start + size]
        start += size
        ids.append(f"req-{number}")
        batches.append(batch)
        paid.append(cents(model.predict(batch)))
    return ids, batches, paid


def test_a_full_queue_drops_and_counts_without_blocking(local_model: LoadedModel):
    challenger = replace(local_model, version="8")
    shadow, registry = scorer("sqlite://", challenger, capacity=5)  # not started: nothing drains
    shadow.offer(local_model, *requests(local_model, [3, 3, 3]))
    assert len(shadow.buffer) == 5
    assert shadow.status(local_model)["dropped"]["queue_full"] == 4
    value = registry.get_sample_value("realtor_shadow_dropped_total", {"reason": "queue_full"})
    assert value == 4


def test_the_sample_and_the_same_version_rule(local_model: LoadedModel):
    draws = iter([0.9, 0.1, 0.5])
    assert sampled(3, 0.5, lambda: next(draws)) == [False, True, False]
    assert sampled(2, 0.0, lambda: 0.0) == [False, False]
    same, _ = scorer("sqlite://", local_model)  # the challenger is the production version
    same.offer(local_model, *requests(local_model, [2]))
    assert (
        len(same.buffer) == 0
        and "is the production version" in same.status(local_model)["idle_reason"]
    )
    assert "no challenger" in shadow_state(None, local_model)


@pytest.mark.postgres
def test_scored_rows_land_and_a_failing_request_costs_only_its_rows(
    local_model: LoadedModel, pg_url: str
):
    challenger = replace(local_model, version="8")
    shadow, registry = scorer(pg_url, challenger)
    ids, batches, paid = requests(local_model, [4, 1, 3])
    refused = [{**batches[1][0], "acre_lot": -1.0}]  # log1p(-1) = -inf: the model refuses it
    batches[1] = refused
    shadow.start()
    try:
        shadow.offer(local_model, ids, batches, paid)
    finally:
        shadow.stop()
    engine = create_engine(pg_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(select(ShadowPrediction).order_by(ShadowPrediction.id)).all()
    finally:
        engine.dispose()
    assert [(r.request_id, r.row_index) for r in rows] == [
        *[("req-0", i) for i in range(4)],
        *[("req-2", i) for i in range(3)],
    ]
    expected = cents(challenger.predict(batches[0] + batches[2]))
    assert [r.challenger_price for r in rows] == expected
    assert [r.production_price for r in rows] == paid[0] + paid[2]
    assert {(r.production_version, r.challenger_version, r.model_name) for r in rows} == {
        ("7", "8", "local")
    }
    status = shadow.status(local_model)
    assert (status["scored"], status["failures"], status["queued"]) == (7, 1, 0)
    assert "v8: ValueError" in status["last_failure"]
    assert registry.get_sample_value("realtor_shadow_failures_total") == 1
    assert registry.get_sample_value("realtor_shadow_scored_total") == 7

"""Shadow challengers on the HTTP path (issue 19): a real serving process, registry and ledger.

Two services on the same registered model, one with ``SERVING_SHADOW=true``, answer the same
requests. The challenger is a real registered version that differs from production: the
session's model refitted with ``np.log`` where production has ``np.log1p`` on ``acre_lot``. Its
prices differ on every row, and it *fails* on a lot of 0 acres (log(0) = -inf: scikit-learn
and the fast path refuse it), which production answers. That is a real model failing on real
rows, through the same load and predict code as any version; nothing of serving is mocked.

- answers are byte-identical with shadow on and off (same request ids, same bodies);
- the request the challenger cannot score is answered (200, production's price) and counted;
- the shadow rows land in ``shadow_predictions`` beside the price production answered;
- /model and /metrics show the shadow's state.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass

import httpx
import numpy as np
import pytest
from sqlalchemy import create_engine, select

from bench.payloads import realistic_records
from tests.support.served_model import (
    ServedStack,
    ServingProcess,
    copy_version,
    serving_process,
    set_alias,
)

NAME = "realtor-shadow-test"
RECORDS = [r for r in realistic_records(40, seed=19) if r.get("acre_lot") not in (0, 0.0)]
REFUSED = {**RECORDS[0], "acre_lot": 0.0}  # production answers it; the challenger cannot

pytestmark = [pytest.mark.postgres, pytest.mark.s3, pytest.mark.slow]


@dataclass(frozen=True)
class Shadowed:
    off: ServingProcess
    on: ServingProcess
    production: str
    challenger: str
    ledger_url: str


def register_log_challenger(tracking_uri: str) -> str:
    """A real version of NAME whose acre_lot goes through np.log: it fails on a 0-acre lot."""
    import mlflow
    import mlflow.sklearn

    from tasks.core.model import SKOPS_TRUSTED_TYPES, build_model, feature_frame, target
    from tests.tasks.factories import make_rows

    rows = make_rows(600, seed=19).to_pandas()
    fitted = build_model({"max_iter": 30}, seed=19).fit(feature_frame(rows), target(rows))
    features = fitted.regressor_.named_steps["features"]
    features.named_transformers_["acre_lot"].named_steps["log1p"].func = np.log
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment("shadow-test")
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            fitted,
            name="model",
            registered_model_name=NAME,
            serialization_format="skops",
            skops_trusted_types=[*SKOPS_TRUSTED_TYPES, "numpy.log"],
        )
    return str(info.registered_model_version)


@pytest.fixture(scope="module")
def shadowed(served_stack: ServedStack) -> Iterator[Shadowed]:
    stack = served_stack.stack
    production = copy_version(stack.tracking_uri, stack.model_name, "1", NAME)
    set_alias(stack.tracking_uri, NAME, production)
    challenger = register_log_challenger(stack.tracking_uri)
    set_alias(stack.tracking_uri, NAME, challenger, "challenger")
    env = {**stack.env, "MODEL_NAME": NAME, "SERVING_INFERENCE_LOG_FLUSH_SECONDS": "0.2"}
    with ExitStack() as running, ThreadPoolExecutor(2) as pool:
        # both start at once (each waits for its /ready): half the wait of one after the other
        managers = [serving_process(env), serving_process(env, SERVING_SHADOW="true")]
        started = [pool.submit(manager.__enter__) for manager in managers]
        for manager in managers:
            running.push(manager.__exit__)
        off, on = (future.result() for future in started)
        deadline = time.monotonic() + 120
        while on.get("/model").json().get("shadow", {}).get("challenger_version") != challenger:
            assert time.monotonic() < deadline, on.log()[-3000:]
            time.sleep(0.2)
        yield Shadowed(off, on, production, challenger, stack.ledger_url)


def ask(served: ServingProcess, body: object, request_id: str) -> httpx.Response:
    return served.post("/predict", json=body, headers={"x-request-id": request_id})


def shadow_status(served: ServingProcess) -> dict:
    return served.get("/model").json()["shadow"]


def wait_for(served: ServingProcess, done, what: str) -> dict:
    deadline = time.monotonic() + 30
    while not done(status := shadow_status(served)):
        assert time.monotonic() < deadline, f"{what}: {status}"
        time.sleep(0.1)
    return status


def test_answers_are_byte_identical_with_shadow_on_and_off(shadowed: Shadowed):
    bodies = [RECORDS[0], RECORDS[1:6], REFUSED, [REFUSED, *RECORDS[6:9]], *RECORDS[9:20]]
    for number, body in enumerate(bodies):
        rid = f"shadow-same-{number}"
        off, on = ask(shadowed.off, body, rid), ask(shadowed.on, body, rid)
        assert off.status_code == on.status_code == 200, (off.text, on.text)
        assert on.content == off.content
        assert on.json()["model_version"] == shadowed.production
    assert "shadow" not in shadowed.off.get("/model").json()


def test_a_failing_challenger_costs_no_request_and_is_counted(shadowed: Shadowed):
    answered = ask(shadowed.on, REFUSED, "shadow-refused")
    assert answered.status_code == 200 and answered.json()["prices"][0] > 0
    status = wait_for(shadowed.on, lambda s: s["failures"] >= 1, "no failure counted")
    assert (
        "ValueError" in status["last_failure"]
        and f"v{shadowed.challenger}" in (status["last_failure"])
    )
    metrics = shadowed.on.get("/metrics").text
    failures = next(
        float(line.split()[-1])
        for line in metrics.splitlines()
        if line.startswith("realtor_shadow_failures_total ")
    )
    assert failures >= 1
    assert ask(shadowed.on, RECORDS[0], "shadow-after").status_code == 200


def test_shadow_rows_land_beside_the_answer_production_gave(shadowed: Shadowed):
    from tasks.core.ledger import ShadowPrediction

    answers = {}
    for number, record in enumerate(RECORDS[20:30]):
        rid = f"shadow-row-{number}"
        answers[rid] = ask(shadowed.on, record, rid).json()["prices"][0]
    wait_for(shadowed.on, lambda s: s["queued"] == 0 and s["scored"] >= 10, "rows not scored")
    engine = create_engine(shadowed.ledger_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                select(ShadowPrediction).where(
                    ShadowPrediction.request_id.in_(list(answers)),
                    ShadowPrediction.model_name == NAME,
                )
            ).all()
    finally:
        engine.dispose()
    assert sorted(r.request_id for r in rows) == sorted(answers)
    for row in rows:
        assert row.production_price == answers[row.request_id]
        assert (row.production_version, row.challenger_version) == (
            shadowed.production,
            shadowed.challenger,
        )
    assert sum(r.challenger_price != r.production_price for r in rows) >= 8  # another model
    status = shadow_status(shadowed.on)
    assert status["sample"] == 1.0 and status["scoring"] and status["dropped"]["queue_full"] == 0

"""The demo's live traffic (scripts/live_traffic.py): what it draws, and that it reaches the log.

The samples are checked against the pool they come from (the demo's realistic records): the
shifted one really over-represents the state and the luxury homes, the unshifted one does not.
Then records go to the session's real serving process and land in its inference log.
"""

from __future__ import annotations

import statistics
import time
import uuid
from collections import Counter

import pytest
from sqlalchemy import create_engine, func, select

from bench.payloads import DEMO_SEED, realistic_pool
from scripts.live_traffic import (
    POOL_SCALE,
    LiveTrafficError,
    Shift,
    main,
    sample_records,
    send,
)
from tasks.core.ledger import InferenceLog
from tests.support.processes import free_port
from tests.support.served_model import ServedStack, ServingProcess

N = 3_000


@pytest.fixture(scope="module")
def pool() -> list[dict]:
    return realistic_pool(DEMO_SEED, POOL_SCALE)


def share_of_state(records: list[dict], state: str) -> float:
    return Counter(r["state"] for r in records)[state] / len(records)


def median_size(records: list[dict]) -> float:
    return statistics.median(r["house_size"] for r in records if r["house_size"] is not None)


def test_the_shifted_sample_over_represents_the_state_and_luxury_homes(pool) -> None:
    shift = Shift()
    shifted = sample_records(N, shift=shift, seed=7, pool=pool)
    assert len(shifted) == N
    assert share_of_state(pool, "Vermont") < 0.01
    assert 0.35 < share_of_state(shifted, "Vermont") < 0.45  # 40%, give or take the draw
    luxury = sum(shift.is_luxury(r) for r in shifted) / N
    assert luxury > 0.4 > 3 * sum(shift.is_luxury(r) for r in pool) / len(pool)
    assert median_size(shifted) > 1.5 * median_size(pool)
    assert Counter(r["state"] for r in shifted).most_common(1)[0][0] == "Vermont"


def test_the_unshifted_sample_looks_like_the_pool(pool) -> None:
    sample = sample_records(N, seed=7, pool=pool)
    for state in ("California", "Texas", "Vermont"):
        assert abs(share_of_state(sample, state) - share_of_state(pool, state)) < 0.02
    assert median_size(sample) == pytest.approx(median_size(pool), rel=0.05)


def test_samples_are_seeded(pool) -> None:
    assert sample_records(50, seed=1, pool=pool) == sample_records(50, seed=1, pool=pool)
    assert sample_records(50, seed=1, pool=pool) != sample_records(50, seed=2, pool=pool)
    shifted = sample_records(50, shift=Shift(), seed=1, pool=pool)
    assert shifted == sample_records(50, shift=Shift(), seed=1, pool=pool)


def test_a_shift_the_pool_cannot_give_says_so(pool) -> None:
    with pytest.raises(LiveTrafficError, match="no state 'Atlantis' record"):
        sample_records(10, shift=Shift(state="Atlantis"), pool=pool)
    with pytest.raises(ValueError, match="add up to at most 1"):
        Shift(state_share=0.7, luxury_share=0.5)


def logged_rows(ledger_url: str, prefix: str) -> int:
    engine = create_engine(ledger_url)
    try:
        with engine.connect() as connection:
            return connection.execute(
                select(func.count())
                .select_from(InferenceLog)
                .where(InferenceLog.request_id.like(f"{prefix}-%"))
            ).scalar_one()
    finally:
        engine.dispose()


def test_shifted_traffic_reaches_serving_and_its_inference_log(
    serving: ServingProcess, served_stack: ServedStack, pool
) -> None:
    prefix = f"live-{uuid.uuid4().hex[:8]}"
    records = sample_records(120, shift=Shift(), seed=3, pool=pool)
    result = send(serving.url, records, batch_size=50, request_prefix=prefix)
    assert (result.records, result.requests) == (120, 3)  # 50 + 50 + 20
    assert result.model_versions == (served_stack.first.model_version,)
    deadline = time.monotonic() + 20
    while (logged := logged_rows(served_stack.stack.ledger_url, prefix)) < 120:
        assert time.monotonic() < deadline, f"{logged} of 120 rows in the inference log"
        time.sleep(0.2)
    assert logged == 120


def test_the_command_line_sends_and_fails_clearly(serving: ServingProcess, capsys) -> None:
    args = ["--url", serving.url, "--records", "30", "--batch-size", "10", "--shifted"]
    assert main([*args, "--request-prefix", f"cli-{uuid.uuid4().hex[:8]}"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("live traffic: 30 shifted (Vermont 40%, luxury 40%) records in 3")
    assert "30/30 records in 3 requests" in err  # the progress line
    assert main(["--url", serving.url, "--records", "60", "--batch-size", "60"]) == 1
    assert "answered 413" in capsys.readouterr().err  # more records than the service takes
    closed = f"http://127.0.0.1:{free_port()}"
    assert main(["--url", closed, "--records", "5"]) == 1
    assert f"{closed} did not answer" in capsys.readouterr().err

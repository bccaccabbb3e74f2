"""schemathesis against the running service's OpenAPI schema, with a real model loaded:
no generated request (at least 1,000 in all) gets a 5xx, and answers match their schemas.

The schema is read from the running service (``from_url``), so the cases are generated from
what it really publishes; each operation runs as a Hypothesis test of its own here (the
``from_fixture`` pytest integration does not run on this pytest).
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.support.served_model import ServingProcess

pytestmark = [pytest.mark.postgres, pytest.mark.s3, pytest.mark.slow]

MIN_CASES = 1000
#: examples per operation: the record bodies get most, the parameterless GETs need few
EXAMPLES = {"POST /predict": 400, "POST /explain": 400, "POST /admin/reload": 100}
DEFAULT_EXAMPLES = 25
#: invalid requests (bodies breaking the schema: wrong types, booleans for numbers, statuses
#: outside the enum, ...) per operation that has a body
NEGATIVE_EXAMPLES = 200


def run(operation, mode: GenerationMode, examples: int, base_url: str) -> int:
    """``examples`` generated cases of one operation against the service; how many ran."""
    ran = 0

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def check(case) -> None:
        nonlocal ran
        ran += 1
        case.call_and_validate(
            base_url=base_url, checks=[not_a_server_error, response_schema_conformance], timeout=30
        )

    check()
    return ran


def test_no_generated_request_gets_a_server_error(serving: ServingProcess) -> None:
    schema = schemathesis.openapi.from_url(f"{serving.url}/openapi.json")
    counts: dict[str, int] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        key = f"{operation.method.upper()} {operation.path}"
        modes = [(GenerationMode.POSITIVE, EXAMPLES.get(key, DEFAULT_EXAMPLES))]
        if operation.body:
            modes.append((GenerationMode.NEGATIVE, NEGATIVE_EXAMPLES))
        for mode, examples in modes:
            label = f"{key} ({mode.value})"
            counts[label] = run(operation, mode, examples, serving.url)
    total = sum(counts.values())
    print(f"\nschemathesis: {total} cases: {counts}")
    assert counts["POST /predict (negative)"] > 0 and counts["POST /explain (positive)"] > 0
    assert total >= MIN_CASES, counts

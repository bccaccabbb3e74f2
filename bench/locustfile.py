"""Load for a deployed serving service (compose or cluster): realistic records, mixed requests.

Each simulated user sends, in proportion 6 : 2 : 1, one record to ``POST /predict``, a list of
2-10 records to ``POST /predict``, and one record to ``POST /explain``. Records are the
simulator's (``bench/payloads.py``: the published mixes of status, state, city and nulls, zip
codes of the cities the demo's model knows), in the JSON the service takes. Answers are
checked: 200, one price per record, contributions for an explanation.

    .venv/bin/locust -f bench/locustfile.py --headless -u 32 -r 8 -t 2m --host http://HOST:PORT
    .venv/bin/locust -f bench/locustfile.py --host http://HOST:PORT     # web UI on :8089

``--think-time S`` makes each user wait up to S seconds between requests (default 0: every user
sends its next request as soon as the last one answered, which measures capacity).
"""

from __future__ import annotations

import random
import sys
from pathlib import Path
from typing import Any

from locust import FastHttpUser, between, events, task

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.payloads import realistic_records  # noqa: E402

RECORDS: list[dict[str, Any]] = realistic_records(2000)


@events.init_command_line_parser.add_listener
def _arguments(parser: Any) -> None:
    parser.add_argument(
        "--think-time",
        type=float,
        default=0.0,
        help="most seconds a user waits between requests (0: none)",
    )


class ServingUser(FastHttpUser):
    """A client of the price service."""

    def wait_time(self) -> float:
        think = getattr(self.environment.parsed_options, "think_time", 0.0) or 0.0
        return between(0.0, think)(self) if think > 0 else 0.0

    def _predict(self, records: list[dict[str, Any]] | dict[str, Any], name: str) -> None:
        expected = len(records) if isinstance(records, list) else 1
        with self.client.post("/predict", json=records, name=name, catch_response=True) as answer:
            if answer.status_code != 200:
                answer.failure(f"HTTP {answer.status_code}: {answer.text[:200]}")
                return
            prices = answer.json().get("prices", [])
            if len(prices) != expected:
                answer.failure(f"{len(prices)} prices for {expected} records")

    @task(6)
    def one_record(self) -> None:
        self._predict(random.choice(RECORDS), "/predict (1 record)")

    @task(2)
    def small_list(self) -> None:
        size = random.randint(2, 10)
        self._predict(random.sample(RECORDS, size), "/predict (2-10 records)")

    @task(1)
    def explain(self) -> None:
        record = random.choice(RECORDS)
        with self.client.post(
            "/explain", json=record, name="/explain", catch_response=True
        ) as answer:
            if answer.status_code != 200:
                answer.failure(f"HTTP {answer.status_code}: {answer.text[:200]}")
            elif not answer.json().get("contributions"):
                answer.failure("no contributions in the explanation")

"""tasks.monitor.live: PostgreSQL's COPY path reads the same frame as the portable one.

The monitor reads a window's features by ``json_to_record`` and ``COPY ... TO STDOUT`` on
PostgreSQL (fast) and by SQLAlchemy's JSON operators elsewhere (SQLite). Both run here on one
real PostgreSQL ledger, over rows in serving's log format with what a real log holds: missing
values, empty and quoted text, commas, non-ASCII, other models' rows inside the id range.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pandas as pd
import pytest
from sqlalchemy import insert

from serving.inference_log import log_rows
from tasks.core.ledger import InferenceLog, Ledger
from tasks.monitor import live
from tests.support.postgres import fresh_database

MODEL = "m-live"
RECORDS = [
    {"bed": 3, "bath": 2.5, "acre_lot": 0.12, "house_size": 1800, "status": "for_sale",
     "state": "Vermont", "city": "Burlington", "zip_code": "05401"},
    {"bed": None, "bath": None, "acre_lot": None, "house_size": None, "status": None,
     "state": None},
    {"bed": 1, "status": "", "state": 'Puerto "Rico", PR\nñ', "house_size": 1e8},
    {"bath": 1, "state": "Texas"},  # keys missing altogether
]  # fmt: skip


@pytest.fixture(scope="module")
def ledger() -> Iterator[Ledger]:
    with fresh_database("realtor_live") as url:
        ledger = Ledger.open(url)
        at = datetime.now(UTC)
        rows = log_rows(MODEL, "1", uuid.uuid4().hex, RECORDS, [1.0] * len(RECORDS), at)
        other = log_rows("m-other", "1", uuid.uuid4().hex, RECORDS[:2], [1.0, 1.0], at)
        with ledger.session() as session:
            session.execute(insert(InferenceLog), rows[:2] + other + rows[2:])
        yield ledger
        ledger.engine.dispose()


def test_copy_path_reads_what_the_portable_path_reads(ledger: Ledger) -> None:
    fast = live.read_features(ledger, MODEL, 1, 6)
    assert ledger.engine.dialect.name == "postgresql"
    portable = live._read_portable(ledger, MODEL, 1, 6)
    pd.testing.assert_frame_equal(fast, portable)
    assert list(fast.columns) == live.COLUMNS and len(fast) == 4
    assert fast["state"].tolist() == ["Vermont", None, 'Puerto "Rico", PR\nñ', "Texas"]
    assert fast["status"].tolist() == ["for_sale", None, "", None]
    assert fast["bed"].isna().tolist() == [False, True, False, True]
    assert fast["house_size"][2] == 1e8


def test_an_empty_range_is_an_empty_frame_of_the_same_columns(ledger: Ledger) -> None:
    fast = live.read_features(ledger, MODEL, 100, 200)
    portable = live._read_portable(ledger, MODEL, 100, 200)
    assert len(fast) == 0 and list(fast.columns) == live.COLUMNS
    assert fast.dtypes.to_dict() == portable.dtypes.to_dict()

"""The canonical schema: wire records in, canonical Arrow columns out, problems named."""

from __future__ import annotations

import datetime as dt
import math

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tasks.core.schema import CANONICAL_SCHEMA, COLUMNS, RecordAccumulator


def record(**overrides):
    base = {
        "brokered_by": 101640.0,
        "status": "for_sale",
        "price": 325000.0,
        "bed": 3.0,
        "bath": 2.0,
        "acre_lot": 0.26,
        "street": 1962661.0,
        "city": "Adjuntas",
        "state": "Puerto Rico",
        "zip_code": 601.0,
        "house_size": 1760.0,
        "prev_sold_date": "2021-12-03",
    }
    return {**base, **overrides}


def coerce(records, chunk_rows=50_000):
    return RecordAccumulator(chunk_rows=chunk_rows).extend(records).finish()


def test_wire_record_becomes_canonical():
    result = coerce([record()])
    assert result.conforms
    assert result.table.schema == CANONICAL_SCHEMA
    row = result.table.to_pylist()[0]
    assert row["zip_code"] == "00601"  # the leading zeros the float lost are back
    assert row["brokered_by"] == 101640
    assert row["street"] == 1962661
    assert row["prev_sold_date"] == dt.date(2021, 12, 3)


def test_nulls_and_nan_stay_null_and_bad_dates_are_counted():
    result = coerce(
        [record(price=None, bed=math.nan, prev_sold_date="not a date"), record(zip_code=None)]
    )
    assert result.conforms
    rows = result.table.to_pylist()
    assert rows[0]["price"] is None
    assert rows[0]["bed"] is None
    assert rows[0]["prev_sold_date"] is None
    assert rows[1]["zip_code"] is None
    assert result.nulled == {"prev_sold_date": 1}


def test_price_as_text_is_kept_as_text_and_named():
    records = [record(), record(price="three hundred thousand")]
    result = coerce(records, chunk_rows=1)  # the bad value arrives in a later chunk
    assert not result.conforms
    assert result.table.num_rows == 2  # no row is lost
    assert result.table.schema.field("price").type == pa.string()
    assert "'price'" in result.problems[0]
    assert "three hundred thousand" in result.problems[0]


def test_missing_and_unexpected_columns_are_named():
    bad = record()
    del bad["house_size"]
    bad["colour"] = "blue"
    result = coerce([record(), bad])
    assert any("'house_size' missing from 1 of 2" in p for p in result.problems)
    assert any("unexpected column 'colour'" in p for p in result.problems)
    assert result.table.num_rows == 2


def test_a_record_that_is_not_an_object_is_refused():
    with pytest.raises(ValueError, match="record 1 is a JSON array"):
        coerce([record(), [1, 2, 3]])


def test_empty_batch_has_the_canonical_schema():
    result = coerce([])
    assert result.table.num_rows == 0
    assert result.table.schema == CANONICAL_SCHEMA


def test_booleans_are_not_prices():
    result = coerce([record(price=True)])
    assert not result.conforms


wire_floats = st.one_of(st.none(), st.floats(0, 1e9, allow_nan=False))


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "price": wire_floats,
                "bed": wire_floats,
                "zip_code": st.one_of(st.none(), st.integers(0, 99999).map(float)),
                "status": st.sampled_from(["for_sale", "sold", "ready_to_build"]),
            }
        ),
        max_size=30,
    ),
    st.integers(1, 7),
)
def test_coercion_keeps_every_row_and_value(partial_records, chunk_rows):
    records = [record(**r) for r in partial_records]
    result = coerce(records, chunk_rows=chunk_rows)
    assert result.conforms
    assert result.table.num_rows == len(records)
    assert result.table.column_names == list(COLUMNS)
    assert result.table["price"].to_pylist() == [r["price"] for r in records]
    zips = result.table["zip_code"].to_pylist()
    for original, canonical in zip(records, zips, strict=True):
        if original["zip_code"] is None:
            assert canonical is None
        else:
            assert len(canonical) >= 5
            assert int(canonical) == original["zip_code"]

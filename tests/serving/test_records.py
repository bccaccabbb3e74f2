"""What /predict accepts: one record or a list, canonical values, errors naming field and rule."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from serving.records import (
    Record,
    RecordsInvalidError,
    RecordsTooLargeError,
    _parse_slowly,
    parse_records,
    records_schema,
)
from tasks.core.model import FEATURES

FULL = {
    "brokered_by": 101640.0,
    "status": "for_sale",
    "price": 289900.0,
    "bed": 3,
    "bath": 2,
    "acre_lot": 0.12,
    "street": 1962661.0,
    "city": "Austin",
    "state": "Texas",
    "zip_code": 78701,
    "house_size": 1650,
    "prev_sold_date": "2015-06-30",
}


def parse(body, max_rows: int = 10):
    return parse_records(json.dumps(body).encode(), max_rows)


def errors_of(body, max_rows: int = 10) -> list[dict]:
    with pytest.raises(RecordsInvalidError) as caught:
        parse(body, max_rows)
    return caught.value.errors


def test_a_data_api_row_is_accepted_and_canonicalised():
    [record], was_list = parse(FULL)
    assert not was_list
    features = record.features()
    assert list(features) == list(FEATURES)
    assert features["zip_code"] == "78701" and features["bed"] == 3.0
    assert features["prev_sold_date"] == dt.date(2015, 6, 30)
    assert "price" not in features and "street" not in features


@pytest.mark.parametrize("given", FEATURES)
def test_every_feature_but_one_may_be_null_or_missing(given: str):
    value = FULL[given] if given != "prev_sold_date" else "2015-06-30"
    [record], _ = parse({given: value})
    assert [name for name, v in record.features().items() if v is not None] == [given]
    [record], _ = parse({**dict.fromkeys(FEATURES), given: value})
    assert [name for name, v in record.features().items() if v is not None] == [given]


@pytest.mark.parametrize("body", [{}, dict.fromkeys(FEATURES), {"price": 1.0, "street": None}])
def test_a_record_with_no_feature_is_refused(body: dict):
    [error] = errors_of(body)
    assert error["loc"] == ["body"] and "gives no feature: send at least one of" in error["msg"]


def test_status_numbers_and_long_values():
    assert "'for_sale', 'sold' or 'ready_to_build'" in errors_of({"status": "foo"})[0]["msg"]
    for bad in (True, "3", [3]):
        assert errors_of({"bed": bad})[0]["msg"] == "bed: Input should be a valid number"
    [record], _ = parse({"bed": 3, "house_size": 1650})  # integers are numbers
    assert record.bed == 3.0 and record.house_size == 1650.0
    [error] = errors_of({"city": "y" * 10_000})
    assert error["input"] == '"' + "y" * 39 + "…"


@pytest.mark.parametrize(
    ("value", "expected"), [(601, "00601"), (601.0, "00601"), ("02139", "02139")]
)
def test_zip_codes_are_five_digits(value, expected):
    [record], _ = parse({"zip_code": value})
    assert record.zip_code == expected


@pytest.mark.parametrize(
    ("field", "value", "rule"),
    [
        ("bed", -1, "greater than or equal to 0"),
        ("bath", -0.5, "greater than or equal to 0"),
        ("acre_lot", -2, "greater than or equal to 0"),
        ("house_size", 0, "greater than 0"),
        ("zip_code", "2139", "exactly 5 digits"),
        ("zip_code", 123456, "outside 0-99999"),
        ("zip_code", 601.5, "not a whole number"),
        ("prev_sold_date", "2020-13-01", "month value is outside"),
        ("prev_sold_date", "1700-01-01", "outside 1800-01-01"),
        ("state", "", "at least 1 character"),
        ("bed", "three", "valid number"),
        ("colour", "red", "Extra inputs are not permitted"),
    ],
)
def test_a_bad_field_is_named_with_its_rule(field, value, rule):
    [error] = errors_of({field: value})
    assert error["loc"] == ["body", field]
    assert rule in error["msg"] and error["msg"].startswith(f"{field}: ")


def test_errors_in_a_list_name_the_record():
    errors = errors_of([{"bed": 1}, {"bed": 2, "house_size": -1}])
    assert [e["loc"] for e in errors] == [["body", 1, "house_size"]]
    assert errors[0]["msg"].startswith("[1].house_size: ")


def test_bodies_that_are_not_records():
    assert errors_of([])[0]["msg"] == "the list is empty: send at least one record"
    assert "expected a record" in errors_of(3)[0]["msg"]
    with pytest.raises(RecordsInvalidError, match="1 invalid"):
        parse_records(b"{not json", 10)
    with pytest.raises(RecordsInvalidError):
        parse_records(b'{"bed": NaN}', 10)


def test_too_many_records_is_its_own_error():
    records, was_list = parse([FULL] * 3, max_rows=3)
    assert len(records) == 3 and was_list
    with pytest.raises(RecordsTooLargeError, match="4 records in one request; at most 3"):
        parse([FULL] * 4, max_rows=3)


def test_the_openapi_body_schema_bounds_the_list():
    schema = records_schema(7)
    assert schema["anyOf"][1]["maxItems"] == 7 and schema["anyOf"][1]["minItems"] == 1
    properties = Record.model_json_schema()["properties"]
    assert set(FEATURES) <= set(properties)


_KEYS = [*FEATURES, "price", "street", "garage"]
_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-10, 200_000),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["", "Texas", "02139", "2139", "2015-06-30", "2020-13-01", "1700-01-01"]),
    st.text(max_size=5),
)
_RECORDS = st.dictionaries(st.sampled_from(_KEYS), _VALUES, max_size=6)
_BODIES = st.one_of(_RECORDS, st.lists(_RECORDS, max_size=5), _VALUES)


@settings(max_examples=300, deadline=None)
@given(body=_BODIES, pad=st.sampled_from(["", " ", "\n"]))
def test_the_one_pass_parse_answers_as_the_reference_parse(body, pad):
    """validate_json (the fast path) and json.loads + validate_python agree on every body."""
    raw = (pad + json.dumps(body)).encode()

    def outcome(parse):
        try:
            records, was_list = parse(raw, 3)
        except RecordsTooLargeError as exc:
            return ("413", str(exc))
        except RecordsInvalidError as exc:
            return ("422", [(e["type"], e["loc"]) for e in exc.errors])
        return ("ok", [r.model_dump() for r in records], was_list)

    assert outcome(parse_records) == outcome(_parse_slowly)

"""Parsing /data bodies: the contract's shape is enforced, and the message names the problem."""

from __future__ import annotations

import json

import pytest

from tasks.core.api_client import (
    NotJsonError,
    ResponseShapeError,
    TransientApiError,
    _check_header,
    judge_body,
    parse_body,
)
from tests.tasks.core.test_schema import record


def parse(payload) -> tuple[dict, object]:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return parse_body(body)


def test_a_good_body_gives_header_and_table():
    header, coerced = parse(
        {"group_number": 1, "day": "Tuesday", "batch_number": 2, "data": [record(), record()]}
    )
    assert header == {"group_number": 1, "day": "Tuesday", "batch_number": 2}
    assert coerced.table.num_rows == 2


def test_header_after_data_is_still_found():
    header, coerced = parse({"data": [record()], "batch_number": 3, "group_number": 1})
    assert header["batch_number"] == 3
    assert coerced.table.num_rows == 1


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ([record()], "the body is a JSON array, not an object"),
        ({"group_number": 1, "batch_number": 1}, "no 'data' field"),
        ({"group_number": 1, "batch_number": 1, "data": {"a": 1}}, "'data' is a JSON object"),
        ({"group_number": 1, "batch_number": 1, "data": "rows"}, "'data' is a JSON string"),
        (
            {"group_number": 1, "batch_number": 1, "data": [record(), 7]},
            "record 1 is a JSON number",
        ),
    ],
)
def test_wrong_shapes_are_named(payload, message):
    with pytest.raises(ResponseShapeError, match=message):
        parse(payload)


def test_a_truncated_body_is_transient():
    good = json.dumps({"group_number": 1, "batch_number": 1, "data": [record()] * 5}).encode()
    with pytest.raises(TransientApiError, match="not valid JSON"):
        parse(good[: len(good) // 2])


@pytest.mark.parametrize("cut", [1, 7, 15, 0.5, 0.9, -1, -2, -5])
def test_a_json_body_cut_anywhere_is_transient(cut):
    good = json.dumps(
        {"group_number": 1, "batch_number": 1, "data": [record(price=1234.5)] * 3}
    ).encode()
    end = int(len(good) * cut) if isinstance(cut, float) else cut % len(good)
    with pytest.raises(TransientApiError, match="cut short after"):
        parse(good[:end])


@pytest.mark.parametrize(
    ("body", "begins"),
    [
        (b"<!doctype html><html><body>Welcome to nginx</body></html>", "<!doctype html><html>"),
        (b"Service Unavailable", "Service Unavailable"),
        (b'{"group_number": 1, <b>oops</b> "data": []}' + b" " * 100, '{"group_number": 1, <b>'),
        (b"\xef\xbb\xbf<html>" + b"x" * 500, "<html>xxxx"),
    ],
)
def test_a_body_that_is_not_json_is_named_and_quoted(body, begins):
    with pytest.raises(NotJsonError, match="is not JSON") as raised:
        parse(body)
    message = str(raised.value)
    assert begins in message
    assert "x" * 80 not in message  # at most 80 characters of what came back
    assert f"({len(body):,} bytes)" in message


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ({"group_number": 1}, "lacks batch_number"),
        ({"group_number": 1, "batch_number": "one"}, "expected an integer from 0 up"),
        ({"group_number": 1, "batch_number": "3"}, "expected an integer from 0 up"),
        ({"group_number": 1, "batch_number": -1}, "expected an integer from 0 up"),
        ({"group_number": 2, "batch_number": 1}, "asked for group 1, the API served group 2"),
        ({"group_number": 1, "batch_number": 1, "day": "Friday"}, "served day 'Friday'"),
    ],
)
def test_header_checks(header, message):
    with pytest.raises(ResponseShapeError, match=message):
        _check_header(header, 1, "Tuesday")


@pytest.mark.parametrize("number", [0, 1, 7, 3.0])
def test_batch_numbers_from_zero_are_accepted(number):
    header = {"group_number": 1, "batch_number": number}
    _check_header(header, 1, "Tuesday")
    assert header["batch_number"] == int(number)


def test_a_refused_body_is_judged_not_raised_and_its_records_counted():
    body = json.dumps({"group_number": 1, "batch_number": "2", "data": [record(), record()]})
    served = judge_body(body.encode(), 1, "Tuesday")
    assert served.refusal == "batch_number is '2', expected an integer from 0 up"
    assert (served.coerced, served.batch_number, served.records) == (None, None, 2)

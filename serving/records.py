"""What a client sends: one Realtor record, validated field by field, and its parsing.

A record carries the model's features (``tasks.core.model.FEATURES``), every one optional (the
model imputes nulls); the other Realtor columns (``brokered_by``, ``street``, ``price``) are
accepted and ignored, so a row of the data API can be sent as it is; any other field is an
error. A record must give at least one feature (``{}`` is refused: it would price the
average house and say nothing). ``status`` is one of the data's values (``tasks.core.schema.STATUSES``);
numbers are strict (``true`` is not a number; integers are). Values are canonical after
validation: ``zip_code`` a five-digit string (an integer such as 2139 becomes "02139"),
``prev_sold_date`` a date.

Error messages never echo a whole value: at most :data:`QUOTE_CHARS` characters and "…".
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from tasks.core.model import FEATURES
from tasks.core.wire import STATUSES

#: The Realtor columns that are not features: accepted, ignored.
IGNORED_FIELDS: tuple[str, ...] = ("brokered_by", "street", "price")
EARLIEST_DATE = dt.date(1800, 1, 1)
LATEST_DATE = dt.date(2200, 12, 31)

#: the longest prefix of an offending value an error message quotes
QUOTE_CHARS = 40

Text = Annotated[str, Field(min_length=1, max_length=128)]
#: strict: a JSON number (integers too), never a boolean or a numeric string
Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]
Count = Annotated[Number, Field(ge=0, le=1000)]
Status = Literal[STATUSES]  # type: ignore[valid-type]
NO_FEATURE = "the record gives no feature: send at least one of " + ", ".join(FEATURES)


#: One record as a client sends it: the example of /docs, and of the tests and benchmarks.
EXAMPLE_RECORD: dict[str, Any] = {
    "status": "for_sale",
    "bed": 3,
    "bath": 2,
    "acre_lot": 0.12,
    "city": "Austin",
    "state": "Texas",
    "zip_code": "78701",
    "house_size": 1650,
    "prev_sold_date": "2015-06-30",
}


class Record(BaseModel):
    """One property. Every feature may be null or left out; unknown categories still predict."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={"examples": [EXAMPLE_RECORD]},
    )

    status: Status | None = Field(None, description="one of " + ", ".join(STATUSES))
    bed: Count | None = Field(None, description="bedrooms, 0-1000")
    bath: Count | None = Field(None, description="bathrooms, 0-1000")
    acre_lot: Annotated[Number, Field(ge=0, le=1e7)] | None = Field(
        None, description="lot size in acres, >= 0"
    )
    city: Text | None = None
    state: Text | None = Field(None, description='full name, e.g. "Texas"')
    zip_code: str | None = Field(
        None,
        description='five digits ("02139"); an integer 0-99999 is zero-padded',
        json_schema_extra={
            "anyOf": [
                {"type": "string", "pattern": r"^\d{5}$"},
                {"type": "integer", "minimum": 0, "maximum": 99999},
                {"type": "null"},
            ]
        },
    )
    house_size: Annotated[Number, Field(gt=0, le=1e8)] | None = Field(
        None, description="living area in square feet, > 0"
    )
    prev_sold_date: dt.date | None = Field(
        None, description="ISO date (YYYY-MM-DD) of the previous sale, 1800-2200"
    )
    brokered_by: Number | None = Field(None, description="ignored (an identifier)")
    street: Number | None = Field(None, description="ignored (an identifier)")
    price: Number | None = Field(None, description="ignored (the target)")

    @model_validator(mode="after")
    def _some_feature(self) -> Record:
        if all(getattr(self, name) is None for name in FEATURES):
            raise ValueError(NO_FEATURE)
        return self

    @field_validator("zip_code", mode="before")
    @classmethod
    def _zip_code(cls, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, bool):
            raise ValueError('zip_code must be a 5-digit string such as "02139" or an integer')
        if isinstance(value, int | float):
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(f"zip_code {value!r} is not a whole number")
            number = int(value)
            if not 0 <= number <= 99_999:
                raise ValueError(f"zip_code {number} is outside 0-99999")
            return f"{number:05d}"
        if isinstance(value, str):
            if len(value) != 5 or not value.isascii() or not value.isdigit():
                raise ValueError(f'zip_code {quote(value)} must be exactly 5 digits, e.g. "02139"')
            return value
        raise ValueError('zip_code must be a 5-digit string such as "02139" or an integer')

    @field_validator("prev_sold_date")
    @classmethod
    def _date_range(cls, value: dt.date | None) -> dt.date | None:
        if value is not None and not EARLIEST_DATE <= value <= LATEST_DATE:
            raise ValueError(
                f"prev_sold_date {value.isoformat()} is outside 1800-01-01..2200-12-31"
            )
        return value

    def features(self) -> dict[str, Any]:
        """The model's inputs, in the canonical types (the date as a ``datetime.date``)."""
        return {name: getattr(self, name) for name in FEATURES}


_ONE = TypeAdapter(Record)
_MANY = TypeAdapter(list[Record])


class RecordsTooLargeError(ValueError):
    """More records than one request may carry."""


class RecordsInvalidError(ValueError):
    """The body is not one record or a list of them; ``errors`` say where and why."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(f"{len(errors)} invalid field(s)")
        self.errors = errors


def _invalid(loc: tuple[Any, ...], msg: str, kind: str) -> RecordsInvalidError:
    return RecordsInvalidError([{"type": kind, "loc": ["body", *loc], "msg": msg}])


def quote(value: Any) -> str:
    """A value as an error message may show it: its repr, cut to :data:`QUOTE_CHARS` + "…"."""
    text = repr(value) if not isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= QUOTE_CHARS else text[:QUOTE_CHARS] + "…"


def _short(value: Any) -> Any:
    """The ``input`` of an error: short plain values as they are, anything else quoted."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else repr(value)
    if isinstance(value, str) and len(value) <= QUOTE_CHARS:
        return value
    return quote(value)


def _errors(exc: ValidationError) -> list[dict[str, Any]]:
    return [
        {
            "type": e["type"],
            "loc": ["body", *e["loc"]],
            "msg": f"{_field(e['loc'])}: {e['msg']}",
            "input": _short(e.get("input")),
        }
        for e in exc.errors(include_url=False, include_context=False)
    ]


def _field(loc: tuple[Any, ...]) -> str:
    """``bed`` or ``[3].bed``: the field an error is about, as a person reads it."""
    parts = [f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc]
    return "".join(parts).lstrip(".") or "body"


def parse_record(body: bytes) -> Record:
    """The one record of an /explain body (a list is a 422 that says to send one object)."""
    if body.lstrip()[:1] == b"[":
        raise _invalid((), "send one record (an object), not a list", "model_type")
    records, _ = parse_records(body, 1)
    return records[0]


def parse_records(body: bytes, max_rows: int) -> tuple[list[Record], bool]:
    """The records of a /predict body and whether it was a list (a single object is not).

    Raises :class:`RecordsInvalidError` (HTTP 422) with one entry per bad field, or
    :class:`RecordsTooLargeError` (HTTP 413) when a list holds more than ``max_rows``.

    A well-formed object or list is parsed and validated in one pass by pydantic-core
    (``validate_json``: a quarter of the CPU of ``json.loads`` and then validating Python
    objects, on a 1,000-row body). Anything else, and any body that fails, is parsed again by
    :func:`_parse_slowly`, whose errors are the reference: both paths give the same answer.
    """
    start = body.lstrip()[:1]
    if start not in (b"{", b"["):
        return _parse_slowly(body, max_rows)
    try:
        if start == b"{":
            return [_ONE.validate_json(body)], False
        records = _MANY.validate_json(body)
    except ValidationError:
        return _parse_slowly(body, max_rows)
    if not records or len(records) > max_rows:
        return _parse_slowly(body, max_rows)
    return records, True


def _parse_slowly(body: bytes, max_rows: int) -> tuple[list[Record], bool]:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _invalid((), f"the body is not valid JSON: {exc}", "json_invalid") from None
    if isinstance(data, dict):
        try:
            return [_ONE.validate_python(data)], False
        except ValidationError as exc:
            raise RecordsInvalidError(_errors(exc)) from None
    if isinstance(data, list):
        if not data:
            raise _invalid((), "the list is empty: send at least one record", "too_short")
        if len(data) > max_rows:
            raise RecordsTooLargeError(
                f"{len(data):,} records in one request; at most {max_rows:,} "
                "(SERVING_MAX_BATCH_ROWS): split the batch"
            )
        try:
            return _MANY.validate_python(data), True
        except ValidationError as exc:
            raise RecordsInvalidError(_errors(exc)) from None
    raise _invalid(
        (), "expected a record (a JSON object) or a list of records", "model_attributes_type"
    )


def records_schema(max_rows: int, ref: str = "#/components/schemas/Record") -> dict[str, Any]:
    """The OpenAPI schema of a /predict body: one record, or a list of 1..max_rows records."""
    return {
        "anyOf": [
            {"$ref": ref},
            {"type": "array", "items": {"$ref": ref}, "minItems": 1, "maxItems": max_rows},
        ]
    }

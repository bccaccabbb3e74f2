"""The canonical schema of a Realtor record, and the coercion from the wire to it.

Every task imports its column names and types from here. On the wire (the data API)
``brokered_by``, ``street`` and ``zip_code`` are floats, ``status``, ``city``, ``state`` and
``prev_sold_date`` strings. Canonically:

- ``brokered_by`` and ``street`` are nullable 64-bit integers (identifiers);
- ``zip_code`` is a five-character string with its leading zeros restored (601.0 -> "00601");
- ``prev_sold_date`` is a date (an unparseable value becomes null and is counted);
- the measures (price, bed, bath, acre_lot, house_size) are float64.

Coercion never drops a row. A column that does not fit its wire type (say, price sent as
text) or that is missing is not a reason to lose the batch: it is kept as text (or absent)
and listed in :attr:`CoercionResult.problems`, and the validate step quarantines the batch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import islice, repeat
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from tasks.core.wire import COLUMNS, WIRE_KINDS

#: What the data API sends for each column (:data:`tasks.core.wire.WIRE_KINDS`), as Arrow types.
WIRE_TYPES: dict[str, pa.DataType] = {
    name: pa.float64() if kind == "float" else pa.string() for name, kind in WIRE_KINDS.items()
}

#: The canonical types stored in the raw and curated zones.
CANONICAL_SCHEMA = pa.schema(
    [
        pa.field("brokered_by", pa.int64()),
        pa.field("status", pa.string()),
        pa.field("price", pa.float64()),
        pa.field("bed", pa.float64()),
        pa.field("bath", pa.float64()),
        pa.field("acre_lot", pa.float64()),
        pa.field("street", pa.int64()),
        pa.field("city", pa.string()),
        pa.field("state", pa.string()),
        pa.field("zip_code", pa.string()),
        pa.field("house_size", pa.float64()),
        pa.field("prev_sold_date", pa.date32()),
    ]
)

_COLUMN_NAMES = frozenset(COLUMNS)

TARGET = "price"


@dataclass
class CoercionResult:
    """A table in the canonical schema where possible, and what did not fit."""

    table: pa.Table
    problems: list[str] = field(default_factory=list)
    nulled: dict[str, int] = field(default_factory=dict)

    @property
    def conforms(self) -> bool:
        return not self.problems


class RecordAccumulator:
    """Collects wire records chunk by chunk into Arrow arrays, one column at a time.

    Each chunk of records (dicts, from a JSON parser) is converted to Arrow column by column
    (the values taken out of the dicts by C loops: ``map``, not a Python loop per value) and
    the chunk's dicts are let go, so memory holds the Arrow columns plus what the caller holds.
    """

    def __init__(self, chunk_rows: int = 50_000) -> None:
        self.chunk_rows = chunk_rows
        self.rows = 0
        self._pending: list[Mapping[str, Any]] = []
        self._chunks: dict[str, list[pa.Array]] = {}
        self._as_text: set[str] = set()
        self._first_bad: dict[str, str] = {}
        self._missing: dict[str, int] = {}
        self._extra: dict[str, int] = {}

    def add(self, record: Any) -> None:
        self._pending.append(record)
        if len(self._pending) >= self.chunk_rows:
            self._flush()

    def extend(self, records: Iterable[Any]) -> RecordAccumulator:
        iterator = iter(records)
        while True:
            room = self.chunk_rows - len(self._pending)
            taken = list(islice(iterator, room))
            if not taken:
                return self
            self._pending.extend(taken)
            if len(self._pending) >= self.chunk_rows:
                self._flush()

    def _flush(self) -> None:
        chunk, self._pending = self._pending, []
        if not chunk:
            return
        kinds = set(map(type, chunk))
        if kinds != {dict}:
            for position, record in enumerate(chunk):
                if not isinstance(record, Mapping):
                    raise ValueError(
                        f"record {self.rows + position} is a JSON {json_kind(record)}, "
                        "expected an object"
                    )
            chunk = [r if type(r) is dict else dict(r) for r in chunk]
        names = _COLUMN_NAMES
        for record in chunk:
            if record.keys() != names:
                for key in names - record.keys():
                    self._missing[key] = self._missing.get(key, 0) + 1
                for key in record.keys() - names:
                    self._extra[key] = self._extra.get(key, 0) + 1
        for name in (*COLUMNS, *sorted(self._extra)):
            values = list(map(dict.get, chunk, repeat(name)))
            self._chunks.setdefault(name, []).append(self._to_arrow(name, values))
        self.rows += len(chunk)

    def _to_arrow(self, name: str, values: list[Any]) -> pa.Array:
        wire = WIRE_TYPES.get(name, pa.string())
        if name not in self._as_text:
            try:
                if pa.types.is_floating(wire) and bool in set(map(type, values)):
                    raise TypeError("booleans are not numbers")
                return pa.array(values, type=wire, from_pandas=True)
            except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError) as exc:
                bad = next((v for v in values if not _fits(v, wire)), None)
                self._first_bad[name] = f"{bad!r} ({exc.__class__.__name__})"
                self._as_text.add(name)
        return pa.array([None if v is None else str(v) for v in values], type=pa.string())

    def finish(self) -> CoercionResult:
        """The batch as one table in the canonical schema, with what did not fit."""
        self._flush()
        problems: list[str] = []
        for name, count in sorted(self._missing.items()):
            problems.append(f"column {name!r} missing from {count:,} of {self.rows:,} records")
        for name, count in sorted(self._extra.items()):
            problems.append(f"unexpected column {name!r} in {count:,} records")
        columns: dict[str, pa.ChunkedArray] = {}
        for name, chunks in self._chunks.items():
            if name in self._as_text:
                chunks = [c.cast(pa.string()) for c in chunks]
                problems.append(
                    f"column {name!r} is not {WIRE_TYPES.get(name, pa.string())} on the wire: "
                    f"first offending value {self._first_bad.get(name, '?')}; kept as text"
                )
            columns[name] = pa.chunked_array(chunks, type=chunks[0].type if chunks else None)
        if self.rows == 0:
            columns = {n: pa.chunked_array([], type=WIRE_TYPES[n]) for n in COLUMNS}
        wire_table = pa.table(columns) if columns else pa.table({})
        result = to_canonical(wire_table, skip=self._as_text | set(self._missing))
        result.problems[:0] = problems
        return result


def json_kind(value: Any) -> str:
    """The JSON name of a decoded value's type (object, array, string, number, boolean, null)."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "null"
    if isinstance(value, Mapping):
        return "object"
    return "array" if isinstance(value, list | tuple) else type(value).__name__


def _fits(value: Any, wire: pa.DataType) -> bool:
    if value is None:
        return True
    if pa.types.is_floating(wire):
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, str)


def to_canonical(table: pa.Table, skip: set[str] | frozenset[str] = frozenset()) -> CoercionResult:
    """Cast a wire-typed table to :data:`CANONICAL_SCHEMA`; columns in ``skip`` stay as they are."""
    problems: list[str] = []
    nulled: dict[str, int] = {}
    out: dict[str, pa.ChunkedArray] = {}
    for name in table.column_names:
        column = table[name]
        if name in skip or name not in CANONICAL_SCHEMA.names:
            out[name] = column
            continue
        target = CANONICAL_SCHEMA.field(name).type
        try:
            cast, lost = _cast(name, column, target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            problems.append(f"column {name!r} cannot become {target}: {exc}")
            out[name] = column
            continue
        if lost:
            nulled[name] = lost
        out[name] = cast
    ordered = [n for n in COLUMNS if n in out] + [n for n in out if n not in COLUMNS]
    return CoercionResult(pa.table({n: out[n] for n in ordered}), problems, nulled)


def _cast(name: str, column: pa.ChunkedArray, target: pa.DataType) -> tuple[pa.ChunkedArray, int]:
    """Cast one column; returns the values and how many non-null values became null."""
    if name == "zip_code":
        integral = pc.cast(pc.round(column), pa.int64())
        text = pc.utf8_lpad(pc.cast(integral, pa.string()), width=5, padding="0")
        return text, 0
    if name == "prev_sold_date":
        stripped = pc.utf8_trim_whitespace(column)
        parsed = pc.strptime(stripped, format="%Y-%m-%d", unit="s", error_is_null=True)
        dates = pc.cast(parsed, pa.date32())
        lost = pc.sum(pc.and_(pc.is_valid(column), pc.is_null(dates))).as_py() or 0
        return dates, int(lost)
    if pa.types.is_integer(target):
        if pc.any(pc.not_equal(column, pc.round(column))).as_py():
            raise pa.ArrowInvalid("holds non-integral values")
        return pc.cast(column, target), 0
    return pc.cast(column, target), 0

"""Live requests of a window, read from the ledger's ``inference_log``: the features only.

Serving logs each prediction's inputs as one JSON object per row (``features``). The
monitor needs six of them, and a window can hold a million rows, so the database extracts
them and the rows arrive as six columns, never as a million JSON documents or Python dicts:

- PostgreSQL: ``json_to_record`` parses each document once (six ``->>`` parse it six times:
  6.4 s against 2.1 s of server time for a million rows), and ``COPY ... TO STDOUT`` streams
  the six columns as CSV into pyarrow's CSV reader. A million rows: 16.6-17.7 s -> 3.1-4.9 s
  to read, the whole step 19.6-24.1 s -> 9.7-12.6 s wall (bench/README.md, "The monitor
  over a million logged requests"); the step's own CPU hardly changed, the time was the
  server's and the round trips of the server-side cursor;
- any other database (SQLite: the embedded mode and tests): SQLAlchemy's JSON operators
  (``json_extract``) through a server-side cursor, in chunks of :data:`CHUNK_ROWS`.

Both give the same frame: NUMERIC columns as float64 (NaN when missing), CATEGORICAL as
object (None when missing), in id order.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
from sqlalchemy import select

from tasks.core.drift import CATEGORICAL, NUMERIC
from tasks.core.ledger import Ledger
from tasks.core.ledger_tables import InferenceLog

#: rows per fetch of the server-side cursor (databases other than PostgreSQL)
CHUNK_ROWS = 50_000
COLUMNS = [*NUMERIC, *CATEGORICAL]


def read_features(
    ledger: Ledger, model_name: str, first_log_id: int, last_log_id: int
) -> pd.DataFrame:
    """The input features (:data:`tasks.core.drift.NUMERIC` and ``CATEGORICAL``) of the
    model's rows ``first_log_id..last_log_id``, in id order; a missing value is NaN/None."""
    if ledger.engine.dialect.name == "postgresql":
        return _read_postgres(ledger, model_name, first_log_id, last_log_id)
    return _read_portable(ledger, model_name, first_log_id, last_log_id)


def _copy_statement(model_name: str, first: int, last: int) -> Any:
    from psycopg import sql

    record = sql.SQL(", ").join(
        [sql.SQL("{} float8").format(sql.Identifier(c)) for c in NUMERIC]
        + [sql.SQL("{} text").format(sql.Identifier(c)) for c in CATEGORICAL]
    )
    columns = sql.SQL(", ").join(sql.SQL("r.{}").format(sql.Identifier(c)) for c in COLUMNS)
    return sql.SQL(
        "COPY (SELECT {columns} FROM inference_log AS l, "
        "json_to_record(l.features::json) AS r({record}) "
        "WHERE l.model_name = {model} AND l.id BETWEEN {first} AND {last} ORDER BY l.id) "
        "TO STDOUT (FORMAT csv)"
    ).format(
        columns=columns,
        record=record,
        model=sql.Literal(model_name),
        first=sql.Literal(int(first)),
        last=sql.Literal(int(last)),
    )


class _CopyStream(io.RawIOBase):
    """The blocks of a ``COPY ... TO STDOUT`` as a readable file (for pyarrow's CSV reader)."""

    def __init__(self, blocks: Iterator[Any]) -> None:
        self._blocks = blocks
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            block = next(self._blocks, None)
            if block is None:
                return 0
            self._pending = bytes(block)
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def _read_postgres(ledger: Ledger, model_name: str, first: int, last: int) -> pd.DataFrame:
    types = {**{c: pa.float64() for c in NUMERIC}, **{c: pa.string() for c in CATEGORICAL}}
    with ledger.engine.connect() as connection:
        raw = connection.connection.driver_connection  # psycopg 3
        with raw.cursor() as cursor:
            statement = _copy_statement(model_name, first, last)
            with cursor.copy(statement) as copy:
                blocks = iter(copy)
                head = next(blocks, None)
                if head is None:  # no rows (pyarrow refuses an empty CSV)
                    return _empty()
                stream = io.BufferedReader(
                    _CopyStream(itertools.chain([head], blocks)), buffer_size=1 << 20
                )
                reader = pa_csv.open_csv(
                    stream,
                    read_options=pa_csv.ReadOptions(column_names=COLUMNS, block_size=8 << 20),
                    convert_options=pa_csv.ConvertOptions(
                        column_types=types,
                        strings_can_be_null=True,  # NULL is an unquoted empty field,
                        quoted_strings_can_be_null=False,  # "" is an empty string
                    ),
                )
                table = pa.Table.from_batches(list(reader), schema=reader.schema)
    frame = table.to_pandas()
    for column in CATEGORICAL:
        frame[column] = frame[column].astype(object)
    return frame


def _read_portable(ledger: Ledger, model_name: str, first: int, last: int) -> pd.DataFrame:
    features = InferenceLog.features
    statement = (
        select(
            *(features[c].as_float().label(c) for c in NUMERIC),
            *(features[c].as_string().label(c) for c in CATEGORICAL),
        )
        .where(
            InferenceLog.model_name == model_name,
            InferenceLog.id.between(first, last),
        )
        .order_by(InferenceLog.id)
    )
    parts: list[pd.DataFrame] = []
    with ledger.engine.connect() as connection:
        result = connection.execution_options(stream_results=True, yield_per=CHUNK_ROWS).execute(
            statement
        )
        for chunk in result.partitions():
            part = pd.DataFrame.from_records(chunk, columns=COLUMNS)
            for column in NUMERIC:
                part[column] = part[column].astype(float)
            for column in CATEGORICAL:
                part[column] = part[column].astype(object)
            parts.append(part)
    return pd.concat(parts, ignore_index=True) if parts else _empty()


def _empty() -> pd.DataFrame:
    return pd.DataFrame(
        {
            **{c: np.array([], dtype=float) for c in NUMERIC},
            **{c: np.array([], dtype=object) for c in CATEGORICAL},
        }
    )

"""The lake's layout and its Parquet I/O: one home for every key and every Parquet read/write.

Zones (under the object store of ``STORAGE_URL``):

- ``raw/group=G/day=D/received/<sha256>.json.gz``: every body the data API answered, byte
  for byte (gzip), named by the sha256 of the uncompressed body, written before it is judged;
- ``raw/group=G/day=D/batch=NNNN-<sha16>.parquet``: the canonical Parquet of an accepted
  delivery (sha16: of its received body), immutable;
- ``curated/<same stem>.parquet``: validate's output for a batch it accepted;
- ``quarantine/<same stem>/``: a rejected batch with its reasons;
- ``reports/validation|drift/batch_id=N/...``: the reports a person reads;
- ``reports/runs/batch_id=N/summary.json``: record's story of the batch;
- ``raw/inference/date=YYYY-MM-DD/...parquet``: what serving predicted (its inference log).

Steps, serving and the UI build keys here and nowhere else, so a layout change is one edit.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from tasks.core.storage import ObjectStore

if TYPE_CHECKING:  # the keys need neither: record and fetch's key building stay light
    import pandas as pd
    import pyarrow as pa

PARQUET = "application/vnd.apache.parquet"


class BatchIdentity(Protocol):
    """What names a batch in the lake (a ledger ``Batch`` or a ``CuratedBatch``)."""

    group_number: int
    day: str
    batch_number: int
    sha256: str


def batch_stem(group_number: int, day: str, batch_number: int, sha256: str) -> str:
    """``group=G/day=D/batch=NNNN-<sha16>``: the part every zone's key of a batch shares."""
    return f"group={group_number}/day={day}/batch={batch_number:04d}-{sha256[:16]}"


def stem_of(batch: BatchIdentity) -> str:
    return batch_stem(batch.group_number, batch.day, batch.batch_number, batch.sha256)


def raw_key(group_number: int, day: str, batch_number: int, sha256: str) -> str:
    """Where a raw batch lives: group, day, batch number, and its content hash."""
    return f"raw/{batch_stem(group_number, day, batch_number, sha256)}.parquet"


GZIP_JSON = "application/gzip"


def payload_prefix(group_number: int, day: str) -> str:
    """Where the bodies received for (group, day) are kept."""
    return f"raw/group={group_number}/day={day}/received/"


def payload_key(group_number: int, day: str, sha256: str) -> str:
    """The body as received (gzip), named by the sha256 of the uncompressed body."""
    return f"{payload_prefix(group_number, day)}{sha256}.json.gz"


def curated_key(batch: BatchIdentity) -> str:
    return f"curated/{stem_of(batch)}.parquet"


def quarantine_prefix(batch: BatchIdentity) -> str:
    return f"quarantine/{stem_of(batch)}/"


def validation_report_keys(batch_id: int) -> tuple[str, str]:
    """(JSON, HTML) of validate's report for one batch."""
    base = f"reports/validation/batch_id={batch_id}/validation"
    return f"{base}.json", f"{base}.html"


def drift_report_keys(batch_id: int) -> tuple[str, str]:
    """(JSON, HTML) of drift_check's report for one batch."""
    base = f"reports/drift/batch_id={batch_id}/drift"
    return f"{base}.json", f"{base}.html"


def monitor_report_keys(first_log_id: int, last_log_id: int) -> tuple[str, str]:
    """(JSON, HTML) of the monitor's report on the inference-log rows first..last.

    Named by the rows, not the window's ledger id: the report is written before the window
    is recorded, so a window row never points at a report that is not there.
    """
    base = f"reports/monitor/logs={first_log_id:012d}-{last_log_id:012d}/monitor"
    return f"{base}.json", f"{base}.html"


def summary_key(batch_id: int) -> str:
    """record's summary of one batch."""
    return f"reports/runs/batch_id={batch_id}/summary.json"


def inference_key(day: str, first_id: int, last_id: int) -> str:
    """One flushed chunk of the inference log (``day`` as YYYY-MM-DD; ids of its rows)."""
    return f"raw/inference/date={day}/log-{first_id:012d}-{last_id:012d}.parquet"


def to_parquet(table: pa.Table) -> bytes:
    """Deterministic Parquet bytes for ``table`` (same table, same pyarrow: same bytes)."""
    import pyarrow.parquet as pq

    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd", row_group_size=128 * 1024)
    return sink.getvalue()


def read_table(store: ObjectStore, key: str, columns: Sequence[str] | None = None) -> pa.Table:
    """The Parquet object ``key`` (only ``columns`` when given)."""
    import pyarrow.parquet as pq

    return pq.read_table(
        io.BytesIO(store.get_bytes(key)), columns=list(columns) if columns else None
    )


def read_frame(store: ObjectStore, key: str) -> pd.DataFrame:
    """The Parquet object ``key`` as a DataFrame (dates as datetime64, not objects)."""
    return read_table(store, key).to_pandas(date_as_object=False)

"""Validate a raw batch with the Great Expectations suite: curate it, or quarantine it.

``python -m tasks.validate --batch-id N`` (N: the ledger id that fetch returned).

- Rows breaking a row-level expectation (see :mod:`tasks.core.expectations`) are dropped from the
  curated copy and counted per rule;
- the outcome (pass, warn, fail) is decided by :func:`tasks.validation_outcome.decide_validation`
  from the counts and the ``VALIDATION_*`` thresholds;
- pass or warn: Parquet in the curated zone (canonical schema, bad rows dropped), batch status
  ``curated``;
- fail: the whole batch (as served) is copied to the quarantine folder with its validation
  result (JSON and HTML) beside it, batch status ``quarantined``;
- either way the report is stored under ``reports/validation/batch_id=N/`` and a
  ``validations`` row records the outcome and its reasons. The raw object is never modified.

Idempotent: a batch that already has its validation returns the recorded result and writes
nothing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from tasks.core.cli import BatchInputs, Step
from tasks.core.expectations import (
    DUPLICATE_FLAG,
    arrow_schema_problems,
    flag_duplicates,
    run_suite,
)
from tasks.core.lake import PARQUET, curated_key, quarantine_prefix, read_table, to_parquet
from tasks.core.lake import validation_report_keys as report_keys
from tasks.core.ledger import Ledger, Validation
from tasks.core.lifecycle_ledger import find_validation, record_validation
from tasks.core.logs import get_logger
from tasks.core.schema import CANONICAL_SCHEMA, COLUMNS
from tasks.core.settings import TaskSettings
from tasks.core.storage import ObjectStore, open_store
from tasks.validate.outcome import (
    ValidationCounts,
    ValidationThresholds,
    ValidationVerdict,
    decide_validation,
)
from tasks.validate.report import render_validation_html

log = get_logger(__name__)


class ValidateInputs(BatchInputs):
    """Inputs of tasks.validate."""


def thresholds_of(settings: TaskSettings) -> ValidationThresholds:
    return ValidationThresholds(
        warn_bad_row_share=settings.validation_warn_bad_row_share,
        max_bad_row_share=settings.validation_max_bad_row_share,
        max_duplicate_share=settings.validation_max_duplicate_share,
        min_rows=settings.validation_min_rows,
    )


def split_fetch_problems(problems: Sequence[str]) -> tuple[list[str], list[str]]:
    """Fetch's schema problems as (schema problems, notes): extra columns are only notes."""
    schema, notes = [], []
    for problem in problems:
        (notes if problem.startswith("unexpected column") else schema).append(problem)
    return schema, notes


_COLUMN = re.compile(r"column '([^']+)'")


def without_repeats(fetch_problems: Sequence[str], table_problems: Sequence[str]) -> list[str]:
    """Fetch's problems, then the table's about columns fetch did not already name.

    A text column is named once ("column 'price' is not double on the wire: first offending
    value 'expensive'"), not twice ("... is string, not double" says nothing more).
    """
    named = {m.group(1) for p in fetch_problems if (m := _COLUMN.search(p))}
    more = [p for p in table_problems if not ((m := _COLUMN.search(p)) and m.group(1) in named)]
    return list(dict.fromkeys([*fetch_problems, *more]))


def validate_table(
    table: pa.Table, fetch_problems: Sequence[str], limits: ValidationThresholds
) -> tuple[ValidationVerdict, dict[str, Any], np.ndarray]:
    """Run the suite on ``table``; (verdict, report body, boolean mask of the rows to keep)."""
    fetch_schema, notes = split_fetch_problems(fetch_problems)
    schema_problems = without_repeats(fetch_schema, arrow_schema_problems(table.schema))
    frame = table.to_pandas()  # default index 0..n-1: GE's unexpected indices are positions
    frame[DUPLICATE_FLAG] = flag_duplicates(frame)
    suite = run_suite(frame, table.schema, min_rows=limits.min_rows)
    n = table.num_rows
    del frame

    drop = np.zeros(n, dtype=bool)
    bad = np.zeros(n, dtype=bool)
    dropped_by_rule: dict[str, int] = {}
    for rule, rows in suite.unexpected_rows.items():
        if not rows:
            continue
        index = np.asarray(rows, dtype=np.int64)
        dropped_by_rule[rule] = len(rows)
        drop[index] = True
        if rule != "duplicate row":
            bad[index] = True
    failed_checks = [
        o.rule
        for o in suite.failed_batch_expectations()
        # schema problems are already listed (with what fetch saw); row count is in min_rows
        if not (o.rule.startswith("column ") or o.rule.startswith("at least "))
    ]
    counts = ValidationCounts(
        rows_in=n,
        bad_rows=int(bad.sum()),
        duplicate_rows=dropped_by_rule.get("duplicate row", 0),
        rows_dropped=int(drop.sum()),
        dropped_by_rule=dropped_by_rule,
        schema_problems=schema_problems,
        failed_batch_checks=failed_checks,
    )
    verdict = decide_validation(counts, limits)
    extra = [c for c in table.column_names if c not in COLUMNS]
    if extra and verdict.outcome != "fail":
        notes.append(f"columns left out of the curated copy: {', '.join(extra)}")
    if notes:
        verdict = ValidationVerdict(verdict.outcome, [*verdict.reasons, *notes])
    body = {
        "counts": {
            "rows_in": counts.rows_in,
            "bad_rows": counts.bad_rows,
            "duplicate_rows": counts.duplicate_rows,
            "rows_dropped": counts.rows_dropped,
        },
        "schema_problems": schema_problems,
        "expectations": [o.as_dict() for o in suite.outcomes],
        "skipped_rules": suite.skipped_rules,
        "gx_version": suite.gx_version,
        "gx_statistics": suite.statistics,
    }
    return verdict, body, ~drop


def run(inputs: ValidateInputs, settings: TaskSettings) -> dict[str, Any]:
    ledger = Ledger.of(settings)
    store = open_store(settings.storage_url, settings)
    batch = ledger.get_batch(inputs.batch_id)
    recorded = find_validation(ledger, batch.id)
    if recorded is not None:
        return recorded_result(store, recorded)

    limits = thresholds_of(settings)
    table = read_table(store, batch.raw_key)
    verdict, body, keep = validate_table(table, batch.schema_problems or [], limits)
    rows_out = int(keep.sum()) if verdict.status == "curated" else 0
    json_key, html_key = report_keys(batch.id)
    dropped_by_rule = {
        e["rule"]: e["unexpected_count"]
        for e in body["expectations"]
        if e["level"] == "row" and e["unexpected_count"]
    }
    result: dict[str, Any] = {
        "batch_id": batch.id,
        "status": verdict.status,
        "outcome": verdict.outcome,
        "rows_in": table.num_rows,
        "rows_out": rows_out,
        "rows_dropped": table.num_rows - int(keep.sum()),
        "dropped_by_rule": dropped_by_rule,
        "curated_key": None,
        "quarantine_key": None,
        "report_key": json_key,
        "report_html_key": html_key,
        "reasons": verdict.reasons,
    }

    if verdict.status == "curated":
        curated = table.filter(pa.array(keep)).select(list(COLUMNS)).cast(CANONICAL_SCHEMA)
        del table
        result["curated_key"] = curated_key(batch)
        store.put_bytes(result["curated_key"], to_parquet(curated), content_type=PARQUET)
        del curated
    else:
        del table
        prefix = quarantine_prefix(batch)
        result["quarantine_key"] = prefix
        # the batch as served, untouched, beside its validation result
        store.put_bytes(f"{prefix}data.parquet", store.get_bytes(batch.raw_key), PARQUET)

    report = {
        "result": result,
        "batch": {
            "group_number": batch.group_number,
            "day": batch.day,
            "batch_number": batch.batch_number,
            "raw_key": batch.raw_key,
            "sha256": batch.sha256,
            "fetch_schema_problems": batch.schema_problems or [],
        },
        "thresholds": {
            "validation_warn_bad_row_share": limits.warn_bad_row_share,
            "validation_max_bad_row_share": limits.max_bad_row_share,
            "validation_max_duplicate_share": limits.max_duplicate_share,
            "validation_min_rows": limits.min_rows,
        },
        **body,
    }
    report_json = json.dumps(report, indent=2, default=str).encode()
    report_html = render_validation_html(report).encode()
    store.put_bytes(json_key, report_json, content_type="application/json")
    store.put_bytes(html_key, report_html, content_type="text/html; charset=utf-8")
    if result["quarantine_key"]:
        prefix = result["quarantine_key"]
        store.put_bytes(f"{prefix}validation.json", report_json, "application/json")
        store.put_bytes(f"{prefix}validation.html", report_html, "text/html; charset=utf-8")

    row, created = record_validation(
        ledger,
        Validation(
            batch_id=batch.id,
            outcome=verdict.outcome,
            status=verdict.status,
            rows_in=result["rows_in"],
            rows_out=result["rows_out"],
            rows_dropped=result["rows_dropped"],
            curated_key=result["curated_key"],
            report_key=json_key,
            report_html_key=html_key,
            reasons=verdict.reasons,
        ),
    )
    if not created:  # a concurrent run recorded it first: its result stands
        return recorded_result(store, row)
    if verdict.outcome != "pass":
        log.warning(
            "validate.not_clean",
            batch_id=batch.id,
            outcome=verdict.outcome,
            reasons=verdict.reasons,
        )
    return result


def recorded_result(store: ObjectStore, validation: Validation) -> dict[str, Any]:
    """The XCom result of a validation already in the ledger (read back from its report)."""
    if not validation.report_key or not store.exists(validation.report_key):
        raise RuntimeError(
            f"batch {validation.batch_id} has a validation in the ledger (id {validation.id}) but "
            f"its report {validation.report_key!r} is not in the store; restore the report, or "
            "delete the validation row to validate the batch again"
        )
    report = json.loads(store.get_bytes(validation.report_key))
    return dict(report["result"])


def summary(result: dict[str, Any]) -> str:
    line = (
        f"validate: batch {result['batch_id']} {result['status']} ({result['outcome']}): "
        f"{result['rows_out']:,} of {result['rows_in']:,} rows kept"
    )
    by_rule = result.get("dropped_by_rule") or {}
    if result["rows_dropped"]:
        detail = ", ".join(f"{rule}: {count:,}" for rule, count in by_rule.items())
        line += f"; {result['rows_dropped']:,} dropped ({detail})"
    if result["status"] == "quarantined":
        line += f"; quarantined: {'; '.join(result['reasons'][:3])}"
    return line


STEP = Step(
    "validate", ValidateInputs, run, summary, doc=__doc__, preload_modules=("great_expectations",)
)
main = STEP.main

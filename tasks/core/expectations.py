"""The Great Expectations 1.x suite of a Realtor batch, and what it found.

One ephemeral context, one suite, one validation definition over a pandas dataframe. The
suite is built from the rules below, so the rules are the single description of a good row:

Row-level expectations (a row that breaks one is dropped from the curated copy and counted
under that rule; nulls pass every rule except the "missing" ones):

| rule | column | expectation |
|---|---|---|
| price missing / status missing / state missing | price, status, state | not null (the model needs them) |
| price out of range | price | 1,000 .. 50,000,000 dollars ($0 and $2,147,483,600 are bad rows) |
| bed out of range / bath out of range | bed, bath | 1 .. 50 |
| acre_lot out of range | acre_lot | 0 .. 10,000 acres (100,000 is absurd) |
| house_size out of range | house_size | 100 .. 100,000 sqft (4 sqft and 1.04e9 sqft are absurd) |
| status not in domain | status | for_sale, sold, ready_to_build |
| state not a US state or territory | state | the 50 states, District of Columbia and the territories, full names |
| zip code not 5 digits | zip_code | a five-character string of digits |
| duplicate row | is_duplicate_row | an exact copy of an earlier row of the batch |

Batch-level expectations: each canonical column exists and has its type, the row count is at
least ``validation_min_rows``. The duplicate flag is computed with pandas (every copy after the
first; GE's compound-uniqueness expectation would flag the first copy too) and checked as a
column of the frame, so its count is exact. Whether the batch passes, warns or fails is not
decided here: see :mod:`tasks.validation_outcome`.

Columns with a schema problem (missing, or not of their canonical type) are not given their
row-level rules: the batch is quarantined for its schema anyway, and a range check on text
would only raise.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pyarrow as pa

from tasks.core.schema import CANONICAL_SCHEMA
from tasks.core.wire import COLUMNS, STATUSES

DUPLICATE_FLAG = "is_duplicate_row"

#: Plausible ranges (inclusive) of the measures.
RANGES: dict[str, tuple[float, float]] = {
    "price": (1_000.0, 50_000_000.0),
    "bed": (1.0, 50.0),
    "bath": (1.0, 50.0),
    "acre_lot": (0.0, 10_000.0),
    "house_size": (100.0, 100_000.0),
}

#: Columns that must have a value in every row kept (the target and the model's keys).
REQUIRED_VALUES: tuple[str, ...] = ("price", "status", "state")

US_STATES: tuple[str, ...] = (
    "Alabama", "Alaska", "Arizona", "Arkansas", "California", "Colorado", "Connecticut",
    "Delaware", "Florida", "Georgia", "Hawaii", "Idaho", "Illinois", "Indiana", "Iowa",
    "Kansas", "Kentucky", "Louisiana", "Maine", "Maryland", "Massachusetts", "Michigan",
    "Minnesota", "Mississippi", "Missouri", "Montana", "Nebraska", "Nevada", "New Hampshire",
    "New Jersey", "New Mexico", "New York", "North Carolina", "North Dakota", "Ohio",
    "Oklahoma", "Oregon", "Pennsylvania", "Rhode Island", "South Carolina", "South Dakota",
    "Tennessee", "Texas", "Utah", "Vermont", "Virginia", "Washington", "West Virginia",
    "Wisconsin", "Wyoming",
)  # fmt: skip
TERRITORIES: tuple[str, ...] = (
    "District of Columbia",
    "Puerto Rico",
    "Virgin Islands",
    "Guam",
    "American Samoa",
    "Northern Mariana Islands",
)
STATE_DOMAIN: tuple[str, ...] = US_STATES + TERRITORIES
ZIP_CODE_PATTERN = r"^\d{5}$"

#: The pandas dtypes a column of each canonical type may have (ids with nulls become float64).
_PANDAS_TYPES: dict[str, list[str]] = {
    "double": ["float64", "Float64"],
    "int64": ["int64", "Int64", "float64"],
    "string": ["object", "str", "string"],
    "date32[day]": ["object", "date", "datetime64[ns]", "datetime64[ms]"],
}


@dataclass(frozen=True)
class RowRule:
    """A row-level expectation: its label (a dropped row's reason) and how to build it."""

    label: str
    column: str
    kind: str  # not_null | between | in_set | regex | is_false
    args: Mapping[str, Any] = field(default_factory=dict)

    def expectation(self) -> Any:
        import great_expectations as gx

        e = gx.expectations
        meta = {"rule": self.label, "level": "row"}
        if self.kind == "not_null":
            return e.ExpectColumnValuesToNotBeNull(column=self.column, meta=meta)
        if self.kind == "between":
            return e.ExpectColumnValuesToBeBetween(
                column=self.column,
                min_value=self.args["min_value"],
                max_value=self.args["max_value"],
                meta=meta,
            )
        if self.kind == "in_set":
            return e.ExpectColumnValuesToBeInSet(
                column=self.column, value_set=list(self.args["value_set"]), meta=meta
            )
        if self.kind == "regex":
            return e.ExpectColumnValuesToMatchRegex(
                column=self.column, regex=self.args["regex"], meta=meta
            )
        if self.kind == "is_false":
            return e.ExpectColumnValuesToBeInSet(column=self.column, value_set=[False], meta=meta)
        raise ValueError(f"unknown rule kind {self.kind!r}")


def row_rules() -> list[RowRule]:
    """Every row-level rule, in report order."""
    rules = [RowRule(f"{column} missing", column, "not_null") for column in REQUIRED_VALUES]
    for column, (low, high) in RANGES.items():
        rules.append(
            RowRule(
                f"{column} out of range",
                column,
                "between",
                {"min_value": low, "max_value": high},
            )
        )
    rules.append(RowRule("status not in domain", "status", "in_set", {"value_set": STATUSES}))
    rules.append(
        RowRule("state not a US state or territory", "state", "in_set", {"value_set": STATE_DOMAIN})
    )
    rules.append(RowRule("zip code not 5 digits", "zip_code", "regex", {"regex": ZIP_CODE_PATTERN}))
    rules.append(RowRule("duplicate row", DUPLICATE_FLAG, "is_false"))
    return rules


def arrow_schema_problems(schema: pa.Schema) -> list[str]:
    """What keeps ``schema`` from the canonical one: missing columns, columns of another type."""
    problems = []
    for wanted in CANONICAL_SCHEMA:
        if wanted.name not in schema.names:
            problems.append(f"column {wanted.name!r} is missing")
        elif not schema.field(wanted.name).type.equals(wanted.type):
            problems.append(
                f"column {wanted.name!r} is {schema.field(wanted.name).type}, not {wanted.type}"
            )
    return problems


def bad_columns(schema: pa.Schema) -> set[str]:
    """Canonical columns that are missing or not of their canonical type."""
    return {
        f.name
        for f in CANONICAL_SCHEMA
        if f.name not in schema.names or not schema.field(f.name).type.equals(f.type)
    }


@dataclass(frozen=True)
class ExpectationOutcome:
    """One expectation's result, condensed for the report and the decision."""

    expectation: str
    column: str | None
    level: str  # row | batch
    rule: str
    success: bool
    unexpected_count: int = 0
    observed: Any = None
    sample: list[Any] = field(default_factory=list)
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "expectation": self.expectation,
            "column": self.column,
            "level": self.level,
            "rule": self.rule,
            "success": self.success,
            "unexpected_count": self.unexpected_count,
            "observed": self.observed,
            "sample": self.sample,
            "error": self.error,
        }


@dataclass
class SuiteRun:
    """What the suite found: per expectation outcomes, and the rows each row rule rejects."""

    outcomes: list[ExpectationOutcome]
    unexpected_rows: dict[str, list[int]]  # row rule label -> positions in the frame
    skipped_rules: list[str]
    gx_version: str
    statistics: dict[str, Any]

    def failed_batch_expectations(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if o.level == "batch" and not o.success]


def flag_duplicates(frame: pd.DataFrame) -> pd.Series:
    """True for every row that is an exact copy of an earlier row (the first copy is kept)."""
    columns = [c for c in frame.columns if c != DUPLICATE_FLAG]
    if frame.empty or not columns:
        return pd.Series(False, index=frame.index, dtype=bool)
    return frame.duplicated(subset=columns, keep="first")


def _quiet_gx() -> None:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    for name in ("great_expectations", "great_expectations.core", "posthog"):
        logging.getLogger(name).setLevel(logging.WARNING)


def run_suite(
    frame: pd.DataFrame,
    schema: pa.Schema,
    *,
    min_rows: int,
    suite_name: str = "realtor_batch",
) -> SuiteRun:
    """Run the suite on ``frame`` (the batch as pandas, with the duplicate flag column).

    ``schema`` is the Arrow schema the frame came from: columns with a schema problem get the
    batch-level checks only. Raises if Great Expectations itself fails (never a silent pass).
    """
    _quiet_gx()
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    context = gx.get_context(
        mode="ephemeral",
        project_config=DataContextConfig(
            store_backend_defaults=InMemoryStoreBackendDefaults(),
            analytics_enabled=False,
            progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
        ),
    )
    source = context.data_sources.add_pandas("realtor")
    asset = source.add_dataframe_asset("batch")
    batch_definition = asset.add_batch_definition_whole_dataframe("whole_batch")
    suite = context.suites.add(gx.ExpectationSuite(name=suite_name))

    e = gx.expectations
    broken = bad_columns(schema)
    for wanted in CANONICAL_SCHEMA:
        meta = {"rule": f"column {wanted.name} present", "level": "batch"}
        suite.add_expectation(e.ExpectColumnToExist(column=wanted.name, meta=meta))
        if wanted.name in frame.columns:
            meta = {"rule": f"column {wanted.name} is {wanted.type}", "level": "batch"}
            suite.add_expectation(
                e.ExpectColumnValuesToBeInTypeList(
                    column=wanted.name, type_list=_PANDAS_TYPES[str(wanted.type)], meta=meta
                )
            )
    suite.add_expectation(
        e.ExpectTableRowCountToBeBetween(
            min_value=min_rows, meta={"rule": f"at least {min_rows} rows", "level": "batch"}
        )
    )
    skipped = []
    for rule in row_rules():
        if rule.column in broken or rule.column not in frame.columns:
            skipped.append(
                f"{rule.label}: not checked, column {rule.column!r} has a schema problem"
            )
            continue
        suite.add_expectation(rule.expectation())

    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=f"{suite_name}_definition", data=batch_definition, suite=suite)
    )
    result = definition.run(
        batch_parameters={"dataframe": frame},
        result_format={"result_format": "COMPLETE", "partial_unexpected_count": 5},
    )
    outcomes: list[ExpectationOutcome] = []
    unexpected_rows: dict[str, list[int]] = {}
    for item in result.results:
        config = item.expectation_config
        meta = config.meta or {}
        kwargs = config.kwargs
        exception = item.exception_info or {}
        if exception.get("raised_exception"):
            raise RuntimeError(
                f"Great Expectations could not evaluate {config.type} on "
                f"{kwargs.get('column')!r}: {exception.get('exception_message')}"
            )
        res = item.result or {}
        level = meta.get("level", "batch")
        rule = meta.get("rule", config.type)
        count = int(res.get("unexpected_count") or 0)
        if level == "row":
            index = res.get("unexpected_index_list") or []
            unexpected_rows[rule] = [int(i) for i in index]
            if len(unexpected_rows[rule]) != count:
                raise RuntimeError(
                    f"Great Expectations reported {count} unexpected rows for {rule!r} but "
                    f"listed {len(unexpected_rows[rule])}: cannot tell which rows to drop"
                )
        outcomes.append(
            ExpectationOutcome(
                expectation=config.type,
                column=kwargs.get("column"),
                level=level,
                rule=rule,
                success=bool(item.success),
                unexpected_count=count,
                observed=_jsonable(res.get("observed_value")),
                sample=[_jsonable(v) for v in (res.get("partial_unexpected_list") or [])[:5]],
            )
        )
    return SuiteRun(
        outcomes=outcomes,
        unexpected_rows=unexpected_rows,
        skipped_rules=skipped,
        gx_version=gx.__version__,
        statistics=_jsonable(dict(result.statistics)),
    )


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if value == value else None  # NaN -> null
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, Iterable):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item"):  # numpy scalars
        return _jsonable(value.item())
    return str(value)


__all__ = [
    "COLUMNS",
    "DUPLICATE_FLAG",
    "RANGES",
    "REQUIRED_VALUES",
    "STATE_DOMAIN",
    "ExpectationOutcome",
    "RowRule",
    "SuiteRun",
    "arrow_schema_problems",
    "bad_columns",
    "flag_duplicates",
    "row_rules",
    "run_suite",
]

"""What every step's command line shares: arguments into a strict model, logs, XCom, exit code.

A step's module (``tasks/<step>/step.py``) defines a frozen pydantic ``Inputs`` model, a
``run(inputs, settings)`` function returning its small result dict and a one-line ``summary``
of that result, and declares them once as a :class:`Step`; :func:`run_task` does the rest, and
``tasks/<step>/__main__.py`` makes it ``python -m tasks.<step>``. ``--schema`` prints
the inputs' JSON schema. Exit code 0 on success (an "exhausted" or "skipped" outcome is a
success), 1 with a one-line reason on stderr when the task failed, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import os
import re
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tasks.core import threads
from tasks.core.logs import configure_logging, get_logger
from tasks.core.settings import TaskSettings, client_limits_env, get_settings
from tasks.core.xcom import write_result


class TaskInputs(BaseModel):
    """Base of every task's inputs: immutable, unknown fields refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class BatchInputs(TaskInputs):
    """Inputs of a step that works on one stored batch."""

    batch_id: int = Field(..., ge=1, description="the ledger id of the batch (fetch's batch_id)")


#: A day is part of object keys and of the API's query: letters, digits, '_' or '-'.
DAY_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


def check_day(day: str) -> str:
    if not DAY_PATTERN.match(day):
        raise ValueError(f"day {day!r}: must be 1-32 letters, digits, '_' or '-'")
    return day


class GroupDayInputs(TaskInputs):
    """Inputs of a step that talks to the data API about one (group, day)."""

    group_number: int | None = Field(None, ge=1, le=10, description="default: GROUP_NUMBER")
    day: str | None = Field(None, description="default: DAY")

    @field_validator("day")
    @classmethod
    def _day_is_a_key_segment(cls, value: str | None) -> str | None:
        return None if value is None else check_day(value)

    def resolve(self, settings: TaskSettings) -> tuple[int, str]:
        """(group number, day): the arguments, or the settings' defaults."""
        return self.group_number or settings.group_number, check_day(self.day or settings.day)


def failure_line(exc: BaseException, settings: TaskSettings) -> str:
    """The task's failure in one line: the problem and what to do.

    An unreachable MLflow server or ledger database gets a sentence naming the setting; any
    other error is its own message, on one line.
    """
    text = " ".join(str(exc).split())
    module = type(exc).__module__
    unreachable = ("Max retries exceeded", "Connection refused", "timed out", "Read timed out")
    if ("api/2.0/mlflow" in text or module.startswith("mlflow")) and any(
        marker in text for marker in unreachable
    ):
        cause = "connection refused" if "refused" in text else "no answer in time"
        return (
            f"the MLflow server at {settings.mlflow_tracking_uri} did not answer ({cause}; "
            f"{settings.mlflow_http_request_max_retries} retries of "
            f"{settings.mlflow_http_request_timeout} s): check that it is up and "
            "MLFLOW_TRACKING_URI, then re-run the task"
        )
    if module.startswith("sqlalchemy") and type(exc).__name__ == "OperationalError":
        orig = getattr(exc, "orig", None)
        first = str(orig).strip().splitlines()[0] if orig is not None else text[:200]
        return (
            f"the ledger database did not answer ({first}): check that it is up and LEDGER_URL, "
            "then re-run the task"
        )
    return text


def one_line(exc: ValidationError, *, env: bool = False) -> str:
    """A pydantic error as one line: ``--flag: message (got value)``, or ``VARIABLE: ...``."""
    problems = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(part) for part in error["loc"])
        if env:
            flag = where.upper() or "settings"
        else:
            flag = f"--{where.replace('_', '-')}" if where else "arguments"
        message = error["msg"].removeprefix("Value error, ")
        got = (
            f" (got {error['input']!r})" if "input" in error and error["type"] != "missing" else ""
        )
        problems.append(f"{flag}: {message}{got}")
    return "; ".join(problems)


def _parser(name: str, inputs: type[TaskInputs], doc: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"python -m tasks.{name}", description=doc, allow_abbrev=False
    )
    parser.add_argument("--schema", action="store_true", help="print the inputs' JSON schema")
    for field_name, info in inputs.model_fields.items():
        flag = "--" + field_name.replace("_", "-")
        parser.add_argument(flag, dest=field_name, default=None, help=info.description)
    return parser


#: the collector's thresholds in a task process (Python's defaults: 700, 10, 10)
GC_THRESHOLDS = (10_000, 10, 10)


def collect_less_often() -> None:
    """Collect cyclic garbage every 10,000 allocations instead of every 700.

    A task's imports (Great Expectations, Evidently, MLflow, scikit-learn) create millions of
    long-lived objects, and with the default threshold the collector walks them again and again
    while they are being created: 1.4 s of a drift_check's 5.4 s of CPU went to 1,333
    collections, 0.8 s of a validate's 3.2 s to 832. Set here, when the task starts (so after
    the module's own imports, before those made where they are used): 0.6-0.7 s in 368 and
    0.4 s in 333, the same peak memory (2 cores, bench/CHANGELOG.md). A long-running process
    that imports ``tasks`` (serving, the UI) keeps its own thresholds.
    """
    gc.set_threshold(*GC_THRESHOLDS)


def skip_the_last_collection() -> None:
    """Spare the interpreter's exit a garbage collection over every object it ever imported.

    At exit Python collects cyclic garbage over all tracked objects, and a task that imported
    Great Expectations, Evidently or MLflow holds millions of them: measured on 2 cores, the
    exit alone took 1-1.8 s after ``import great_expectations`` (0.05-0.07 s frozen) and
    0.3-1.9 s after each task's run (bench/task_startup.py, column "exit"). ``gc.freeze()``
    moves them out of the collector's sight; everything else about the exit stays: atexit
    handlers (MLflow's, ``weakref.finalize``), flushing the standard streams, and freeing the
    objects whose references drop. Only garbage in reference cycles is left to the operating
    system, which reclaims the whole process anyway. Called once the task's result is written
    and its outcome printed, whatever the outcome.
    """
    gc.freeze()


def run_task(
    name: str,
    inputs_model: type[TaskInputs],
    run: Callable[[TaskInputs, TaskSettings], dict[str, Any]],
    argv: Sequence[str] | None,
    *,
    summary: Callable[[dict[str, Any]], str],
    doc: str | None = None,
) -> int:
    collect_less_often()
    args = _parser(name, inputs_model, doc).parse_args(argv)
    if args.schema:
        print(json.dumps(inputs_model.model_json_schema(), indent=2))
        return 0
    given = {k: v for k, v in vars(args).items() if k != "schema" and v is not None}
    threads.choose_waits()  # before any import of scikit-learn (its OpenMP runtime reads it)
    try:
        settings = get_settings()
    except ValidationError as exc:
        print(f"tasks.{name}: invalid setting: {one_line(exc, env=True)}", file=sys.stderr)
        return 2
    try:
        inputs = inputs_model.model_validate(given)
    except ValidationError as exc:
        print(f"tasks.{name}: invalid argument: {one_line(exc)}", file=sys.stderr)
        return 2
    os.environ.update(client_limits_env(settings))
    configure_logging(settings.log_format, settings.log_level)
    log = get_logger(f"tasks.{name}")
    started = time.perf_counter()
    try:
        result = run(inputs, settings)
    except Exception as exc:
        log.error(f"{name}.failed", error=str(exc), error_type=type(exc).__name__)
        print(f"tasks.{name} failed: {failure_line(exc, settings)}", file=sys.stderr)
        skip_the_last_collection()
        return 1
    result["seconds"] = round(time.perf_counter() - started, 3)
    write_result(settings.xcom_return_path, result)
    log.info(f"{name}.done", **{k: v for k, v in result.items() if not isinstance(v, dict | list)})
    print(summary(result))
    skip_the_last_collection()
    return 0


@dataclass(frozen=True)
class Step:
    """One pipeline step: its command line (:meth:`main`) and what a launcher that forks its
    runs from one interpreter imports ahead of them (:meth:`preload`, the local runtime's
    ``PIPELINE_LOCAL_PRELOAD``).

    ``preload_modules`` are the heavy libraries its runs import where they are used (importing
    the step's module stays light); ``preload_env`` the environment defaults its runs set
    before importing them.
    """

    name: str
    inputs: type[TaskInputs]
    run: Callable[[Any, TaskSettings], dict[str, Any]]
    summary: Callable[[dict[str, Any]], str]
    doc: str | None = None
    preload_modules: tuple[str, ...] = ()
    preload_env: Mapping[str, str] = field(default_factory=dict)

    def main(self, argv: Sequence[str] | None = None) -> int:
        """The command line ``python -m tasks.<name>``: its exit code."""
        return run_task(self.name, self.inputs, self.run, argv, summary=self.summary, doc=self.doc)

    def preload(self) -> None:
        """Import what the runs import, OpenMP's waits chosen first as :func:`run_task` does
        (the runtime reads them when it loads)."""
        threads.choose_waits()
        for name, value in self.preload_env.items():
            os.environ.setdefault(name, value)
        for module in self.preload_modules:
            importlib.import_module(module)

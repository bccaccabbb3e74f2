"""The data API client: one batch per call, retried when the failure is transient.

``GET /data`` answers a batch, or HTTP 400 with the course's Spanish message when every
batch has been served (end of data, a clean outcome). Connection errors, timeouts, 5xx and
truncated bodies are retried with exponential backoff (tenacity); any other 4xx, or a body
whose shape is wrong, fails at once with a message that says what was wrong.

The body is streamed to a spooled temporary file and parsed incrementally (ijson), straight
into Arrow columns: memory holds the body once and the columns, never a list of dicts.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from dataclasses import dataclass
from typing import IO, Any

import httpx
import ijson
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from tasks.logs import get_logger
from tasks.schema import CoercionResult, RecordAccumulator

END_OF_DATA_MESSAGE = "Ya se recolectó toda la información mínima necesaria"
_SPOOL_BYTES = 32 * 1024 * 1024

log = get_logger(__name__)


class ApiError(RuntimeError):
    """The data API refused the request (a 4xx other than end of data): not retried."""


class TransientApiError(RuntimeError):
    """A failure worth retrying: 5xx, or a body cut short."""


class ResponseShapeError(ValueError):
    """The body is JSON but not the contract's shape; the message names the problem."""


@dataclass(frozen=True)
class Exhausted:
    """The API said every batch of this (group, day) has been served."""

    group_number: int
    day: str
    detail: str


@dataclass
class ServedBatch:
    group_number: int
    day: str
    batch_number: int
    coerced: CoercionResult
    payload_bytes: int
    payload_sha256: str
    attempts: int
    seconds: float

    @property
    def rows(self) -> int:
        return self.coerced.table.num_rows


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    initial_seconds: float = 1.0
    max_seconds: float = 30.0


RETRYABLE = (httpx.TransportError, TransientApiError)


def fetch_batch(
    base_url: str,
    group_number: int,
    day: str,
    *,
    timeout: httpx.Timeout,
    retry: RetryPolicy,
    client: httpx.Client | None = None,
) -> ServedBatch | Exhausted:
    """Ask the API for the next batch of (group, day), retrying transient failures."""
    own_client = client is None
    http = client or httpx.Client(base_url=base_url, timeout=timeout)
    started = time.perf_counter()
    try:
        retrying = Retrying(
            retry=retry_if_exception_type(RETRYABLE),
            stop=stop_after_attempt(retry.attempts),
            wait=wait_exponential(multiplier=retry.initial_seconds, max=retry.max_seconds),
            before_sleep=_log_retry,
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    outcome = _fetch_once(http, group_number, day)
                    attempts = attempt.retry_state.attempt_number
        except RETRYABLE as exc:
            raise ApiUnavailableError(
                f"the data API at {base_url} failed {retry.attempts} times in a row; last error: "
                f"{_describe(exc)}. Check that it is running and reachable (DATA_API_URL), "
                "then re-run: nothing was stored"
            ) from exc
    finally:
        if own_client:
            http.close()
    if isinstance(outcome, ServedBatch):
        outcome.attempts = attempts
        outcome.seconds = time.perf_counter() - started
    return outcome


class ApiUnavailableError(RuntimeError):
    """Transient failures went on past the retry budget."""


def _describe(exc: BaseException) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out ({exc.__class__.__name__})"
    return f"{exc.__class__.__name__}: {exc}" if str(exc) else exc.__class__.__name__


def _log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    log.warning(
        "data_api.retry",
        attempt=state.attempt_number,
        error=_describe(exc) if exc else None,
        sleep_seconds=round(state.upcoming_sleep, 2),
    )


def _fetch_once(http: httpx.Client, group_number: int, day: str) -> ServedBatch | Exhausted:
    params = {"group_number": group_number, "day": day}
    with http.stream("GET", "/data", params=params) as response:
        if response.status_code >= 500:
            response.read()
            raise TransientApiError(f"HTTP {response.status_code}: {response.text[:200]!r}")
        if response.status_code == 400:
            detail = _detail(response.read())
            if detail == END_OF_DATA_MESSAGE:
                return Exhausted(group_number, day, detail)
            raise ApiError(f"the data API answered HTTP 400: {detail!r}")
        if response.status_code != 200:
            response.read()
            raise ApiError(
                f"the data API answered HTTP {response.status_code} to {response.url}: "
                f"{response.text[:300]!r}; check GROUP_NUMBER, DAY and DATA_API_URL"
            )
        digest = hashlib.sha256()
        size = 0
        with tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES) as body:
            for chunk in response.iter_bytes(1024 * 1024):
                digest.update(chunk)
                body.write(chunk)
                size += len(chunk)
            body.seek(0)
            header, coerced = parse_body(body)
    _check_header(header, group_number, day)
    return ServedBatch(
        group_number=group_number,
        day=day,
        batch_number=header["batch_number"],
        coerced=coerced,
        payload_bytes=size,
        payload_sha256=digest.hexdigest(),
        attempts=1,
        seconds=0.0,
    )


def _detail(body: bytes) -> str:
    import json

    try:
        payload = json.loads(body)
    except ValueError:
        return body[:300].decode(errors="replace")
    return payload.get("detail", payload) if isinstance(payload, dict) else str(payload)


def parse_body(body: IO[bytes]) -> tuple[dict[str, Any], CoercionResult]:
    """Parse a /data body: its header fields, and its records as canonical Arrow columns."""
    header: dict[str, Any] = {}
    data_kind: str | None = None
    try:
        for prefix, event, value in ijson.parse(body, use_float=True):
            if prefix == "" and event == "start_map":
                continue
            if prefix == "" and event != "map_key" and event != "end_map":
                raise ResponseShapeError(
                    f"the body is a JSON {event.replace('start_', '')}, not an object"
                )
            if prefix in ("group_number", "day", "batch_number") and event not in ("map_key",):
                header[prefix] = value
            elif prefix == "data" and event != "map_key" and data_kind is None:
                data_kind = event
            if len(header) == 3 and data_kind is not None:
                break
        if data_kind is None:
            raise ResponseShapeError("the body has no 'data' field")
        if data_kind != "start_array":
            raise ResponseShapeError(f"'data' is a JSON {_kind(data_kind)}, not a list of records")
        body.seek(0)
        accumulator = RecordAccumulator()
        try:
            accumulator.extend(ijson.items(body, "data.item", use_float=True))
        except ValueError as exc:
            if isinstance(exc, ijson.JSONError):
                raise
            raise ResponseShapeError(str(exc)) from exc
        return header, accumulator.finish()
    except ijson.JSONError as exc:
        raise TransientApiError(
            f"the body is not valid JSON ({exc}); it may have been cut short"
        ) from exc


def _kind(event: str) -> str:
    return {"start_map": "object", "string": "string", "number": "number", "null": "null"}.get(
        event, event
    )


def _check_header(header: dict[str, Any], group_number: int, day: str) -> None:
    missing = [k for k in ("group_number", "batch_number") if k not in header]
    if missing:
        raise ResponseShapeError(f"the body lacks {', '.join(missing)}")
    batch_number = header["batch_number"]
    if isinstance(batch_number, float) and batch_number.is_integer():
        header["batch_number"] = batch_number = int(batch_number)
    if not isinstance(batch_number, int) or isinstance(batch_number, bool) or batch_number < 1:
        raise ResponseShapeError(f"batch_number is {batch_number!r}, expected a positive integer")
    served_group = header["group_number"]
    if served_group != group_number:
        raise ResponseShapeError(
            f"asked for group {group_number}, the API served group {served_group!r}"
        )
    if "day" in header and header["day"] != day:
        raise ResponseShapeError(f"asked for day {day!r}, the API served day {header['day']!r}")

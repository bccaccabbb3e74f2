"""The data API client: one batch per call, retried only when the failure is transient.

``GET /data`` answers a batch, or HTTP 400 with the course's Spanish message when every
batch has been served (end of data, a clean outcome, recognised whatever its accents:
:func:`tasks.delivery.is_end_of_data`). Connection errors, timeouts, 5xx and truncated bodies
are retried with exponential backoff (tenacity). What will not change is not retried: a URL
that is not ``http(s)://host``, any other 4xx, a 200 that is not JSON (an HTML page).

A JSON body is a *delivery*: the API may already have moved its cursor, so the client never
throws it away. It comes back as :class:`ServedBatch` with the body as received (gzip, byte for
byte) and its sha256, plus either the parsed header and canonical Arrow columns or the
``refusal`` that says why the fetch cannot accept it (a header or records of the wrong shape);
``tasks.fetch`` stores it either way before judging it.

The body is streamed to a spooled temporary file (and gzip-compressed on the way) and parsed
incrementally (ijson), straight into Arrow columns: memory holds the compressed body and the
columns, never a list of dicts.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tempfile
import time
from dataclasses import dataclass, field
from typing import IO, Any
from urllib.parse import urlparse

import httpx
import ijson
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from tasks.delivery import is_end_of_data
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
    """A body the API served (a delivery): as received, and parsed or refused."""

    group_number: int
    day: str
    batch_number: int | None  # None when the header has no usable batch number
    coerced: CoercionResult | None  # None when refused
    payload_bytes: int
    payload_sha256: str
    attempts: int
    seconds: float
    payload_gzip: bytes = b""  # the body as received, gzip-compressed (deterministic)
    refusal: str | None = None  # why the fetch cannot accept it; None when it can
    records: int | None = None  # records counted in the body (also when refused, if countable)
    header: dict[str, Any] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        if self.coerced is not None:
            return self.coerced.table.num_rows
        return self.records or 0


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    initial_seconds: float = 1.0
    max_seconds: float = 30.0


RETRYABLE = (httpx.TransportError, TransientApiError)
#: transport errors that will not change on a retry (a URL httpx cannot use)
PERMANENT = (httpx.UnsupportedProtocol, httpx.InvalidURL)


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, RETRYABLE) and not isinstance(exc, PERMANENT)


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
    base_url = check_base_url(base_url)
    own_client = client is None
    http = client or httpx.Client(base_url=base_url, timeout=timeout)
    started = time.perf_counter()
    try:
        retrying = Retrying(
            retry=retry_if_exception(_retryable),
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
        except PERMANENT as exc:
            raise ApiError(
                f"DATA_API_URL {base_url!r} cannot be used: {_describe(exc)}; set an "
                "http(s)://host:port URL"
            ) from exc
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


def check_base_url(url: str) -> str:
    """``url`` if it is ``http(s)://host[:port][/path]``; a one-line error naming the fix if not."""
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ApiError(
            f"DATA_API_URL {url!r} is not an http(s) URL with a host: set it like "
            "http://10.43.100.103:8080 (scheme, host, port)"
        )
    return url.rstrip("/")


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
            if is_end_of_data(detail):
                return Exhausted(group_number, day, str(detail))
            raise ApiError(
                f"the data API refused group {group_number}, day {day!r} with HTTP 400 "
                f"{detail!r}; check GROUP_NUMBER (the course's API takes 1-10) and DAY"
            )
        if response.status_code != 200:
            response.read()
            raise ApiError(
                f"the data API answered HTTP {response.status_code} to {response.url}: "
                f"{_one_line(response.text, 200)!r}; check GROUP_NUMBER, DAY and DATA_API_URL"
            )
        content_type = response.headers.get("content-type", "")
        if content_type and "json" not in content_type.lower():
            response.read()
            raise ApiError(
                f"{response.url} answered HTTP 200 with {content_type.split(';')[0]}, not JSON "
                f"(it begins {_one_line(response.text, 80)!r}): DATA_API_URL does not point at "
                "the data API; set it to the API's base URL (the one whose /data answers JSON)"
            )
        digest = hashlib.sha256()
        size = 0
        packed = io.BytesIO()
        with (
            tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES) as body,
            gzip.GzipFile(fileobj=packed, mode="wb", mtime=0, filename="") as zipped,
        ):
            for chunk in response.iter_bytes(1024 * 1024):
                digest.update(chunk)
                body.write(chunk)
                zipped.write(chunk)
                size += len(chunk)
            zipped.close()
            body.seek(0)
            served = judge_body(body, group_number, day)
    served.payload_bytes = size
    served.payload_sha256 = digest.hexdigest()
    served.payload_gzip = packed.getvalue()
    return served


def judge_body(body: IO[bytes], group_number: int, day: str) -> ServedBatch:
    """Parse a complete body into a :class:`ServedBatch`, accepted or with its refusal.

    A body that is not valid JSON raises :class:`TransientApiError` (it was cut short).
    """
    header: dict[str, Any] = {}
    coerced: CoercionResult | None = None
    refusal: str | None = None
    try:
        header, coerced = parse_body(body)
        _check_header(header, group_number, day)
    except ResponseShapeError as exc:
        refusal = str(exc)
        coerced = None
    number = header.get("batch_number")
    batch_number = number if isinstance(number, int) and not isinstance(number, bool) else None
    if header.get("group_number") != group_number or header.get("day", day) != day:
        batch_number = None  # another group's or day's numbering says nothing about ours
    records = coerced.table.num_rows if coerced is not None else _count_records(body)
    return ServedBatch(
        group_number=group_number,
        day=day,
        batch_number=batch_number if batch_number is None or batch_number >= 0 else None,
        coerced=coerced,
        payload_bytes=0,
        payload_sha256="",
        attempts=1,
        seconds=0.0,
        refusal=refusal,
        records=records,
        header=header,
    )


def _count_records(body: IO[bytes]) -> int | None:
    """How many items the body's ``data`` list holds (None when it has no list)."""
    body.seek(0)
    count = 0
    depth = 0
    try:
        for prefix, event, _ in ijson.parse(body):
            if prefix == "data" and event == "start_array":
                depth = 1
            elif (prefix == "data.item" and event in ("start_map", "start_array")) or (
                prefix == "data.item" and event not in ("end_map", "end_array", "map_key")
            ):
                count += 1
    except ijson.JSONError:
        return None
    return count if depth else None


def _one_line(text: str, limit: int) -> str:
    return " ".join(text.split())[:limit]


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
    if not isinstance(batch_number, int) or isinstance(batch_number, bool) or batch_number < 0:
        raise ResponseShapeError(f"batch_number is {batch_number!r}, expected an integer from 0 up")
    served_group = header["group_number"]
    if served_group != group_number:
        raise ResponseShapeError(
            f"asked for group {group_number}, the API served group {served_group!r}"
        )
    if "day" in header and header["day"] != day:
        raise ResponseShapeError(f"asked for day {day!r}, the API served day {header['day']!r}")

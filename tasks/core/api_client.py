"""The data API client: one batch per call, retried only when the failure is transient.

``GET /data`` answers a batch, or HTTP 400 with the course's Spanish message when every
batch has been served (end of data, a clean outcome, recognised whatever its accents:
:func:`tasks.core.delivery.is_end_of_data`). Connection errors, timeouts, 5xx and truncated bodies
are retried with exponential backoff (tenacity). What will not change is not retried: a URL
that is not ``http(s)://host``, any other 4xx, a 200 that is not JSON (an HTML page, whatever
its content type claims: :class:`NotJsonError` quotes its first 80 characters). A body is cut
short, and retried, when it began as JSON and the decoder stopped at its end
(:func:`looks_cut_short`).

A JSON body is a *delivery*: the API may already have moved its cursor, so the client never
throws it away. It comes back as :class:`ServedBatch` with the body as received (gzip, byte for
byte) and its sha256, plus either the parsed header and canonical Arrow columns or the
``refusal`` that says why the fetch cannot accept it (a header or records of the wrong shape);
``tasks.fetch`` stores it either way before judging it.

The body is read whole, hashed, gzip-compressed (level :data:`GZIP_LEVEL`) and decoded in one
pass by msgspec; its records go into Arrow columns 50,000 at a time. Memory holds the body, its
decoded records and the columns at once: about 0.7 GB for the course's largest batch (361k
records, 79 MB of JSON), well inside a task pod's 2 GiB.
"""

from __future__ import annotations

import hashlib
import re
import time
import zlib
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import httpx
import msgspec
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from tasks.core.delivery import is_end_of_data
from tasks.core.logs import get_logger
from tasks.core.schema import CoercionResult, RecordAccumulator, json_kind

END_OF_DATA_MESSAGE = "Ya se recolectó toda la información mínima necesaria"

#: zlib level of the kept body (gzip). Level 9 took 5.7 s of CPU for the course's largest body
#: (79 MB of JSON, to 10.7 MB); level 3 takes 0.7 s for 13.8 MB. A body is written once and
#: read back only when a run died before recording it (and by a person), so speed wins.
GZIP_LEVEL = 3

log = get_logger(__name__)


class ApiError(RuntimeError):
    """The data API refused the request (a 4xx other than end of data): not retried."""


class TransientApiError(RuntimeError):
    """A failure worth retrying: 5xx, or a body cut short."""


class NotJsonError(ApiError):
    """A 200 whose body is not JSON (an HTML page, text): not retried, nothing stored."""


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
    payload_gzip: bytes = b""  # the body as received, gzip-compressed (deterministic: no mtime)
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
        body = response.read()
    try:
        served = judge_body(body, group_number, day)
    except NotJsonError as exc:
        raise NotJsonError(
            f"{response.url} answered HTTP 200 with {content_type.split(';')[0] or 'no content type'}"
            f" but {exc}. DATA_API_URL may point at a proxy or a web page, not the data API: set "
            "it to the API's base URL (the one whose /data answers JSON); nothing was stored"
        ) from exc
    served.payload_bytes = len(body)
    served.payload_sha256 = hashlib.sha256(body).hexdigest()
    served.payload_gzip = gzip_body(body)
    return served


def gzip_body(body: bytes) -> bytes:
    """``body`` as a gzip member without name or timestamp: the same bytes for the same body."""
    return zlib.compress(body, GZIP_LEVEL, wbits=31)


def judge_body(body: bytes, group_number: int, day: str) -> ServedBatch:
    """Parse a complete body into a :class:`ServedBatch`, accepted or with its refusal.

    A body cut short raises :class:`TransientApiError`; one that is not JSON at all,
    :class:`NotJsonError`.
    """
    document = decode_body(body)
    header: dict[str, Any] = {}
    coerced: CoercionResult | None = None
    refusal: str | None = None
    try:
        header, coerced = parse_document(document)
        _check_header(header, group_number, day)
    except ResponseShapeError as exc:
        refusal = str(exc)
        coerced = None
    number = header.get("batch_number")
    batch_number = number if isinstance(number, int) and not isinstance(number, bool) else None
    if header.get("group_number") != group_number or header.get("day", day) != day:
        batch_number = None  # another group's or day's numbering says nothing about ours
    records = coerced.table.num_rows if coerced is not None else _count_records(document)
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


def _count_records(document: Any) -> int | None:
    """How many items the body's ``data`` list holds (None when it has no list)."""
    data = document.get("data") if isinstance(document, dict) else None
    return len(data) if isinstance(data, list) else None


def _one_line(text: str, limit: int) -> str:
    return " ".join(text.split())[:limit]


def _detail(body: bytes) -> str:
    import json

    try:
        payload = json.loads(body)
    except ValueError:
        return body[:300].decode(errors="replace")
    return payload.get("detail", payload) if isinstance(payload, dict) else str(payload)


_BYTE_OFFSET = re.compile(r"\(byte (\d+)\)")


def looks_cut_short(body: bytes, error: str) -> bool:
    """True when ``body`` began as a JSON document and stopped early (a retry may get it whole).

    It begins with ``{`` or ``[`` (after blanks) and the decoder ran off its end: "truncated",
    or malformed at its last byte (msgspec's word for a number cut after its point or sign).
    An HTML page, plain text, or JSON with garbage in the middle is not cut short.
    """
    start = body.lstrip()[:1]
    if not start:
        return True  # an empty 200: the answer did not arrive
    if start not in (b"{", b"["):
        return False
    if "truncated" in error:
        return True
    found = _BYTE_OFFSET.search(error)
    return found is not None and int(found.group(1)) >= len(body) - 1


def decode_body(body: bytes) -> Any:
    """The body's JSON document.

    :class:`TransientApiError` when it is JSON cut short (retried); :class:`NotJsonError`
    when it is not JSON at all, whatever the content type said (not retried).
    """
    try:
        return msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        if looks_cut_short(body, str(exc)):
            raise TransientApiError(
                f"the body is not valid JSON ({exc}); it was cut short after {len(body):,} bytes"
            ) from exc
        raise NotJsonError(
            f"the body is not JSON ({exc}), whatever its content type says: it begins "
            f"{_one_line(body[:400].decode(errors='replace'), 80)!r} ({len(body):,} bytes)"
        ) from exc


def parse_body(body: bytes) -> tuple[dict[str, Any], CoercionResult]:
    """Parse a /data body: its header fields, and its records as canonical Arrow columns."""
    return parse_document(decode_body(body))


def parse_document(document: Any) -> tuple[dict[str, Any], CoercionResult]:
    """A decoded /data body: its header fields, and its records as canonical Arrow columns."""
    if not isinstance(document, dict):
        raise ResponseShapeError(f"the body is a JSON {json_kind(document)}, not an object")
    header = {k: document[k] for k in ("group_number", "day", "batch_number") if k in document}
    if "data" not in document:
        raise ResponseShapeError("the body has no 'data' field")
    data = document["data"]
    if not isinstance(data, list):
        raise ResponseShapeError(f"'data' is a JSON {json_kind(data)}, not a list of records")
    try:
        coerced = RecordAccumulator().extend(data).finish()
    except ValueError as exc:
        raise ResponseShapeError(str(exc)) from exc
    return header, coerced


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

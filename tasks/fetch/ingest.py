"""Keep what the data API served, then judge and record it: nothing is dropped.

Every body is written first, byte for byte, then recorded in the ledger as a delivery with
its outcome; writes and records are retried while the store or the ledger is down
(``FETCH_PERSIST_SECONDS``), and a retry repeats a whole unit, never half of one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

from sqlalchemy.exc import IntegrityError, OperationalError

from tasks.core.api_client import ServedBatch
from tasks.core.delivery import Recorded, classify, judge_new
from tasks.core.lake import GZIP_JSON, PARQUET, payload_key, raw_key, to_parquet
from tasks.core.ledger import Batch, Delivery, Ledger, utcnow
from tasks.core.logs import get_logger
from tasks.core.storage import ObjectStore, StorageError

log = get_logger(__name__)
T = TypeVar("T")


class DeliveryRefusedError(RuntimeError):
    """A body was stored and recorded, but the fetch cannot accept it (or it opened a gap)."""


class PersistError(RuntimeError):
    """A received body could not be written or recorded within FETCH_PERSIST_SECONDS."""


def persist(action: str, fn: Callable[[], T], budget_seconds: float) -> T:
    """``fn()``, retried with backoff while the store or the ledger is unreachable."""
    deadline = time.monotonic() + budget_seconds
    delay = 0.5
    while True:
        try:
            return fn()
        except (StorageError, OperationalError) as exc:
            if time.monotonic() + delay > deadline:
                raise PersistError(
                    f"{action} failed for {budget_seconds:.0f} s: {describe(exc)}"
                ) from exc
            log.warning("fetch.persist_retry", action=action, error=describe(exc))
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


def describe(exc: BaseException) -> str:
    """One line for a store or database error (the driver's first line, no SQL, no links)."""
    if isinstance(exc, OperationalError) and exc.orig is not None:
        return f"{type(exc.orig).__name__}: {str(exc.orig).strip().splitlines()[0]}"
    return " ".join(str(exc).split())[:300]


def _put(store: ObjectStore, key: str, data: bytes, content_type: str) -> None:
    if not store.exists(key):
        store.put_bytes(key, data, content_type=content_type)


def refuse(
    served: ServedBatch,
    store: ObjectStore,
    ledger: Ledger,
    base: dict[str, Any],
    budget_seconds: float,
) -> NoReturn:
    """Record a body the fetch cannot accept as a rejected delivery, and say so."""
    group, day, body_key = served.group_number, served.day, base["payload_key"]
    received_at = base["received_at"]

    def record_rejected() -> Delivery:
        done = ledger.find_delivery(served.payload_sha256, received_at)
        return done or ledger.record_delivery(
            Delivery(outcome="rejected", reason=served.refusal, **base), None
        )

    delivery = persist("recording the rejected delivery", record_rejected, budget_seconds)
    raise DeliveryRefusedError(
        f"the data API served a body the fetch cannot accept: {served.refusal}; it is kept "
        f"as {store.uri(body_key)} (sha256 {served.payload_sha256[:12]}, "
        f"{served.payload_bytes:,} bytes) and recorded as delivery {delivery.id}. Fix the "
        "API or the client, then replay the group and day (realtor_replay), or run "
        f"`python -m tasks.fetch --group-number {group} --day {day} --resolve-incidents "
        '"<why>"` to read on'
    )


def record_accepted(
    served: ServedBatch,
    ledger: Ledger,
    base: dict[str, Any],
    stored: tuple[str, str, int],
    oversize_factor: float,
) -> tuple[Delivery, Batch]:
    """Classify an accepted body against the ledger and record it, as one unit a retry can
    repeat. ``stored``: the keys of its body and Parquet, and the Parquet's size."""
    body_key, key, parquet_bytes = stored
    received_at = base["received_at"]
    group, day, number = served.group_number, served.day, served.batch_number
    assert number is not None and served.coerced is not None  # an accepted body
    coerced = served.coerced
    for _ in range(5):
        done = ledger.find_delivery(served.payload_sha256, received_at)
        if done is not None:  # an earlier attempt committed before its connection died
            assert done.batch_id is not None
            return done, ledger.get_batch(done.batch_id)
        recorded = [
            Recorded(row.id, row.delivery, row.sha256)
            for row in ledger.deliveries_of(group, day, number)
        ]
        verdict = classify(recorded, served.payload_sha256)
        if verdict.kind == "duplicate":
            assert verdict.batch_id is not None
            delivery = Delivery(outcome="duplicate", batch_id=verdict.batch_id, **base)
            ledger.record_delivery(delivery, None)
            return delivery, ledger.get_batch(verdict.batch_id)
        cursor = ledger.cursor(group, day)
        expected = cursor.next_batch_number if cursor is not None else None
        judged = judge_new(
            verdict.kind,
            expected,
            number,
            served.payload_bytes,
            ledger.largest_accepted_payload(group, day),
            oversize_factor,
        )
        batch = Batch(
            group_number=group,
            day=day,
            batch_number=number,
            delivery=verdict.delivery,
            sha256=served.payload_sha256,
            raw_key=key,
            rows=served.rows,
            bytes=parquet_bytes,
            payload_key=body_key,
            payload_bytes=served.payload_bytes,
            schema_problems=coerced.problems,
            status="raw",
        )
        delivery = Delivery(
            outcome=judged.outcome,
            expected_batch_number=judged.expected_batch_number,
            reason=judged.reason,
            **base,
        )
        try:
            ledger.record_delivery(delivery, batch)
        except IntegrityError:  # a concurrent run recorded this number or content first
            continue
        return delivery, batch
    raise PersistError(
        f"batch {number} of group {group}, day {day!r}: concurrent fetches kept recording "
        "it first; re-run the fetch"
    )


def refuse_incident(delivery: Delivery, batch: Batch, store: ObjectStore, body_key: str) -> None:
    """Raise :class:`DeliveryRefusedError` when the recorded delivery is an incident (stored,
    nothing lost, but a person decides before the fetch reads on)."""
    group, day, number = batch.group_number, batch.day, batch.batch_number
    accept = f'run `python -m tasks.fetch --group-number {group} --day {day} --resolve-incidents "<why>"`'
    if delivery.outcome in ("backwards", "oversize"):
        what = {
            "backwards": "the API served an earlier batch number with content never seen under "
            "it (another user of the group restarted or moved its cursor, or the API resamples "
            "on a restart). Replay the group and day (realtor_replay) to start over cleanly, or",
            "oversize": "check the body (kept raw) before anything trains on it: the API may "
            "have served several batches, or another data set, at once. If it is right,",
        }[delivery.outcome]
        raise DeliveryRefusedError(
            f"{delivery.reason}. Batch {number} is stored, nothing of it lost (batch_id "
            f"{batch.id}, delivery id {delivery.id}, body {store.uri(body_key)}), and goes "
            f"through the pipeline once accepted. {what[0].upper()}{what[1:]} {accept} to "
            "accept it"
        )
    if delivery.outcome == "gap":
        missing = delivery.expected_batch_number
        if "0 or 1" in (delivery.reason or ""):
            never = f"the batches before {number} were"
        elif missing == number - 1:
            never = f"batch {missing} was"
        else:
            never = f"batches {missing} to {number - 1} were"
        raise DeliveryRefusedError(
            f"{delivery.reason}: {never} served but never received (the API moved on before "
            f"the answer arrived). Batch {number} is stored, nothing of it lost (batch_id "
            f"{batch.id}, delivery {delivery.id}). Replay the group and day (realtor_replay) "
            "to receive the missing ones, or run `python -m tasks.fetch --group-number "
            f'{group} --day {day} --resolve-incidents "<why>"` to accept the gap'
        )


def ingest(
    served: ServedBatch,
    store: ObjectStore,
    ledger: Ledger,
    budget_seconds: float,
    oversize_factor: float = 5.0,
) -> tuple[Delivery, Batch | None]:
    """Keep the body, then judge and record it; (delivery, its batch or None if rejected).

    Raises :class:`DeliveryRefusedError` after recording a rejected body or an incident (a
    gap, a number that went backwards, an oversize body: :func:`tasks.core.delivery.judge_new`).
    """
    group, day = served.group_number, served.day
    body_key = payload_key(group, day, served.payload_sha256)
    persist(
        f"writing {body_key}",
        lambda: _put(store, body_key, served.payload_gzip, GZIP_JSON),
        budget_seconds,
    )
    received_at = utcnow()  # with the body's sha256, names this delivery across retries
    base = {
        "group_number": group,
        "day": day,
        "batch_number": served.batch_number,
        "payload_key": body_key,
        "payload_sha256": served.payload_sha256,
        "payload_bytes": served.payload_bytes,
        "rows": served.records,
        "received_at": received_at,
    }
    if served.refusal is not None or served.coerced is None:
        refuse(served, store, ledger, base, budget_seconds)
    number = served.batch_number
    assert number is not None  # an accepted body has a batch number
    parquet = to_parquet(served.coerced.table)
    key = raw_key(group, day, number, served.payload_sha256)
    persist(f"writing {key}", lambda: _put(store, key, parquet, PARQUET), budget_seconds)

    stored = (body_key, key, len(parquet))
    delivery, batch = persist(
        "recording",
        lambda: record_accepted(served, ledger, base, stored, oversize_factor),
        budget_seconds,
    )
    refuse_incident(delivery, batch, store, body_key)
    return delivery, batch

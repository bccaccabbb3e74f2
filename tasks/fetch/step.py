"""Fetch the next batch of the data API into the raw zone, and record it in the ledger.

``python -m tasks.fetch [--group-number N] [--day D] [--resolve-incidents TEXT]`` (defaults from
GROUP_NUMBER, DAY).

Nothing the API serves is dropped. Every body it answers is a *delivery*, kept byte for byte
(``raw/group=G/day=D/received/<sha256>.json.gz``) before it is judged, and recorded in the
ledger's ``deliveries`` with what became of it:

- ``stored``: a new batch: its canonical Parquet next to the body, a ``batches`` row;
- ``stored`` with ``delivery`` > 1: other content served under a batch number already stored
  (the API's time window resamples for 5 minutes): a batch of its own, with its own batch_id,
  that goes through the pipeline like any other;
- ``duplicate``: the same content again: nothing new written, the recorded batch_id returned;
- ``exhausted``: the API has served every batch of (group, day); downstream steps skip. When
  live traffic drifted and no batch took it into account, the result says so
  (``pending_live_drift``): a run the monitor started found no labelled data to train on.

It fails loudly (exit 1), and refuses to read on for the (group, day) until a person resolves
it (a replay, or ``--resolve-incidents "why"``), when the body is one it cannot accept (its header or
records have the wrong shape: kept raw with the reason), when the batch number skips ahead
of the one the ledger expects (a gap: the batch is stored, the missing numbers are named),
when new content comes under a number below the last one received (``backwards``; the
newest number again is the time window, an old one with the same content a replay: neither
is an incident), or when the body is more than ``FETCH_OVERSIZE_FACTOR`` times the largest
accepted so far for the group and day (``oversize``). A stored incident's batch goes through
the pipeline once accepted (see below).
A retry then cannot move past the lost batch into the next one.

A batch a run started and did not finish (validated, with no ``batch_records`` row: the
run was killed, or a step failed) is returned again, with ``outcome`` ``resumed``, before the
API is asked for a new batch: the run's steps are idempotent, so validate, drift_check,
train, promote and record pick up where it stopped. A batch stored with an incident that a
person accepted (``--resolve-incidents``) comes the same way, with ``outcome`` ``accepted``.
The oldest such batch comes first; a run takes one.

A body whose objects are written but whose ledger row is not (the ledger went down) is found
again by the next run, which records it before asking the API for more: no object stays
without its row, no row points at a missing object.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Sequence
from typing import Any

import httpx
from pydantic import Field

from tasks.core.api_client import (
    Exhausted,
    RetryPolicy,
    ServedBatch,
    check_base_url,
    fetch_batch,
    judge_body,
)
from tasks.core.cli import GroupDayInputs, Step
from tasks.core.lake import payload_key, payload_prefix
from tasks.core.ledger import Batch, Delivery, Ledger
from tasks.core.lifecycle_ledger import find_validation
from tasks.core.logs import get_logger
from tasks.core.settings import TaskSettings
from tasks.core.storage import ObjectStore, open_store
from tasks.core.story import pending_live_drift
from tasks.fetch.ingest import (
    PersistError,
    ingest,
    persist,
)

log = get_logger(__name__)


class FetchInputs(GroupDayInputs):
    """Inputs of tasks.fetch."""

    resolve_incidents: str | None = Field(
        None,
        min_length=3,
        description="mark the open incidents (rejected, gap, backwards, oversize) of the group "
        "and day resolved with this explanation, then fetch (an accepted stored batch first)",
    )


class FetchBlockedError(RuntimeError):
    """The (group, day) has an open incident: reading on would move past a lost batch."""


def adopt_unrecorded(
    store: ObjectStore,
    ledger: Ledger,
    group: int,
    day: str,
    budget_seconds: float,
    oversize_factor: float = 5.0,
) -> list[Delivery]:
    """Record bodies kept in the raw zone by a run that died before its ledger row."""
    keys = persist(
        f"listing {payload_prefix(group, day)}",
        lambda: store.list_keys(payload_prefix(group, day)),
        budget_seconds,
    )
    known = {
        row.payload_key
        for row in persist(
            "reading the ledger", lambda: ledger.deliveries(group, day), budget_seconds
        )
    }
    orphans: list[ServedBatch] = []
    for key in keys:
        if key in known or not key.endswith(".json.gz"):
            continue
        packed = store.get_bytes(key)
        body = gzip.decompress(packed)
        served = judge_body(body, group, day)
        served.payload_sha256 = hashlib.sha256(body).hexdigest()
        served.payload_bytes = len(body)
        served.payload_gzip = packed
        orphans.append(served)
    adopted = []
    for served in sorted(orphans, key=lambda s: (s.batch_number is None, s.batch_number or 0)):
        log.warning("fetch.adopting", key=payload_key(group, day, served.payload_sha256))
        adopted.append(ingest(served, store, ledger, budget_seconds, oversize_factor)[0])
    return adopted


def run(inputs: FetchInputs, settings: TaskSettings) -> dict[str, Any]:
    group_number, day = inputs.resolve(settings)
    base_url = check_base_url(settings.data_api_url)
    budget = settings.fetch_persist_seconds
    # the ledger and the store answer before the API is asked (and moves its cursor)
    ledger = persist("opening the ledger", lambda: Ledger.of(settings), budget)
    store = open_store(settings.storage_url, settings)
    base: dict[str, Any] = {"group_number": group_number, "day": day}
    if inputs.resolve_incidents:
        resolved = ledger.resolve_incidents(group_number, day, inputs.resolve_incidents)
        log.warning("fetch.resolved", deliveries=resolved, resolution=inputs.resolve_incidents)
        base["resolved"] = resolved
    incidents = persist(
        "reading the ledger", lambda: ledger.open_incidents(group_number, day), budget
    )
    if incidents:
        listed = "; ".join(
            f"delivery {row.id} ({row.outcome}): {row.reason}" for row in incidents[:3]
        )
        raise FetchBlockedError(
            f"group {group_number}, day {day!r} has {len(incidents)} open incident(s): {listed}. "
            "Reading on would move past them: replay the group and day (realtor_replay), or "
            f"run `python -m tasks.fetch --group-number {group_number} --day {day} --resolve-incidents "
            '"<why>"`'
        )
    factor = settings.fetch_oversize_factor
    adopted = adopt_unrecorded(store, ledger, group_number, day, budget, factor)
    if adopted:
        base["adopted_deliveries"] = [row.id for row in adopted]
    unfinished = persist(
        "reading the ledger", lambda: ledger.unfinished_batches(group_number, day), budget
    )
    if unfinished:  # an earlier run took it and ended half-way, or a person accepted it
        started = find_validation(ledger, unfinished[0].id) is not None
        return resume(unfinished[0], unfinished[1:], store, base, interrupted=started)
    timeout = httpx.Timeout(
        settings.fetch_timeout_seconds, connect=settings.fetch_connect_timeout_seconds
    )
    retry = RetryPolicy(
        settings.fetch_attempts,
        settings.fetch_backoff_initial_seconds,
        settings.fetch_backoff_max_seconds,
    )
    outcome = fetch_batch(base_url, group_number, day, timeout=timeout, retry=retry)
    if isinstance(outcome, Exhausted):
        ledger.mark_exhausted(group_number, day)
        pending = pending_live_drift(ledger, settings.model_name)
        if pending:
            log.warning("fetch.live_drift_pending", lines=pending)
        return {
            **base,
            "status": "exhausted",
            "detail": outcome.detail,
            "pending_live_drift": pending,
        }
    try:
        delivery, batch = ingest(outcome, store, ledger, budget, factor)
    except PersistError as exc:
        raise PersistError(
            f"{exc}. The body received is kept in the raw zone if it could be written "
            f"({payload_key(group_number, day, outcome.payload_sha256)}); the next fetch "
            "records it before asking the API for more"
        ) from exc
    assert batch is not None
    status = "duplicate" if delivery.outcome == "duplicate" else "stored"
    if outcome.coerced is not None and outcome.coerced.problems:
        log.warning("fetch.schema_problems", batch_id=batch.id, problems=outcome.coerced.problems)
    return {
        **base,
        "status": status,
        "outcome": delivery.outcome,
        "delivery_id": delivery.id,
        "batch_id": batch.id,
        "batch_number": batch.batch_number,
        "delivery": batch.delivery,
        "raw_key": batch.raw_key,
        "raw_uri": store.uri(batch.raw_key),
        "payload_key": delivery.payload_key,
        "rows": batch.rows,
        "bytes": batch.bytes,
        "sha256": batch.sha256,
        "payload_bytes": outcome.payload_bytes,
        "attempts": outcome.attempts,
        "schema_problems": outcome.coerced.problems if outcome.coerced else [],
        "nulled_values": outcome.coerced.nulled if outcome.coerced else {},
    }


def resume(
    batch: Batch,
    waiting: Sequence[Batch],
    store: ObjectStore,
    base: dict[str, Any],
    *,
    interrupted: bool,
) -> dict[str, Any]:
    """The result that hands an unfinished batch to the rest of the run (again)."""
    if interrupted:
        why = "was interrupted in an earlier run (validated, no record row)"
    else:
        why = "was stored with an incident a person has since accepted"
    note = (
        f"batch {batch.batch_number} (batch_id {batch.id}) {why}; this run finishes it "
        "before asking the API for a new batch"
    )
    if waiting:
        note += f"; {len(waiting)} more wait(s): batch_ids {[b.id for b in waiting]}"
    log.warning("fetch.resuming_interrupted", batch_id=batch.id, waiting=[b.id for b in waiting])
    return {
        **base,
        "status": "stored",
        "outcome": "resumed" if interrupted else "accepted",
        "resumed": True,
        "interrupted": interrupted,
        "note": note,
        "batch_id": batch.id,
        "batch_number": batch.batch_number,
        "delivery": batch.delivery,
        "raw_key": batch.raw_key,
        "raw_uri": store.uri(batch.raw_key),
        "payload_key": batch.payload_key,
        "rows": batch.rows,
        "bytes": batch.bytes,
        "sha256": batch.sha256,
        "payload_bytes": batch.payload_bytes,
        "attempts": 0,
        "schema_problems": batch.schema_problems or [],
        "nulled_values": {},
    }


def summary(result: dict[str, Any]) -> str:
    if result.get("resumed"):
        return f"fetch: {result['note']} -> {result['raw_uri']}"
    if result["status"] == "exhausted":
        pending = "".join(f" | {line}" for line in result.get("pending_live_drift") or [])
        return f"fetch: group {result['group_number']} day {result['day']}: exhausted{pending}"
    delivery = f" (delivery {result['delivery']})" if result.get("delivery", 1) > 1 else ""
    return (
        f"fetch: {result['status']} batch {result['batch_number']}{delivery} as batch_id "
        f"{result['batch_id']} ({result['rows']:,} rows, {result['bytes']:,} bytes, sha256 "
        f"{result['sha256'][:12]}) -> {result['raw_uri']}"
    )


STEP = Step("fetch", FetchInputs, run, summary, doc=__doc__)
main = STEP.main

"""The ledger on SQLite and on a real PostgreSQL: migrations, idempotence, conflicts, cursors."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect
from sqlalchemy.exc import IntegrityError

from tasks.core.ledger import Batch, Ledger


@pytest.fixture(params=["sqlite", "postgres"])
def ledger(request) -> Ledger:
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")
    ledger = Ledger.open(url)
    yield ledger
    ledger.engine.dispose()


def batch(number: int = 1, sha: str = "a" * 64) -> Batch:
    return Batch(
        group_number=1,
        day="Tuesday",
        batch_number=number,
        sha256=sha,
        raw_key=f"raw/group=1/day=Tuesday/batch={number:04d}-{sha[:16]}.parquet",
        rows=10,
        bytes=100,
        schema_problems=[],
        status="raw",
    )


def test_migrations_create_every_table_and_are_idempotent(ledger: Ledger):
    Ledger.open(str(ledger.engine.url.render_as_string(hide_password=False)))  # again: no-op
    tables = set(inspect(ledger.engine).get_table_names())
    expected = {
        "batches",
        "api_cursors",
        "validations",
        "drift_decisions",
        "trainings",
        "promotions",
        "deliveries",
    }
    assert expected <= tables


def test_recording_a_batch_twice_adds_nothing(ledger: Ledger):
    first, created = ledger.record_batch(batch())
    again, created_again = ledger.record_batch(batch())
    assert created
    assert not created_again
    assert again.id == first.id
    assert len(ledger.batches()) == 1
    assert ledger.cursor(1, "Tuesday").last_batch_number == 1


def test_different_content_for_the_same_batch_is_a_delivery_of_its_own(ledger: Ledger):
    first, _ = ledger.record_batch(batch(sha="a" * 64))
    second, created = ledger.record_batch(batch(sha="b" * 64))
    assert created
    assert (first.delivery, second.delivery) == (1, 2)
    assert second.id != first.id
    assert [b.sha256[0] for b in ledger.deliveries_of(1, "Tuesday", 1)] == ["a", "b"]


def test_the_database_refuses_a_second_row_for_one_delivery_or_one_content(ledger: Ledger):
    ledger.record_batch(batch(sha="a" * 64))
    for clash in (
        batch(sha="c" * 64),  # delivery 1 of batch 1 again
        batch(sha="a" * 64),  # the same content as a second delivery
    ):
        clash.delivery = 1 if clash.sha256[0] == "c" else 2
        with pytest.raises(IntegrityError), ledger.session() as session:
            session.add(clash)
    assert len(ledger.batches()) == 1


def test_cursor_advances_is_exhausted_and_resets(ledger: Ledger):
    ledger.record_batch(batch(1))
    ledger.record_batch(batch(2, "c" * 64))
    ledger.mark_exhausted(1, "Tuesday")
    cursor = ledger.cursor(1, "Tuesday")
    assert cursor.last_batch_number == 2
    assert cursor.exhausted_at is not None
    ledger.reset_cursor(1, "Tuesday")
    cursor = ledger.cursor(1, "Tuesday")
    assert cursor.last_batch_number == 0
    assert cursor.exhausted_at is None
    assert len(ledger.batches()) == 2  # the stored batches stay


def test_get_batch_of_an_unknown_id_says_so(ledger: Ledger):
    with pytest.raises(LookupError, match="no batch with id 42"):
        ledger.get_batch(42)

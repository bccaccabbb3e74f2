"""``make demo``'s words about interrupted batches (pure: the ledger reads are the fetch tests')."""

from __future__ import annotations

from scripts.demo_pipeline import interruptions


def test_a_batch_interrupted_before_the_demo_and_finished_by_it_is_said_in_words():
    assert interruptions({1: 0}, {}) == ["batch 0 was interrupted in an earlier run; finished now"]


def test_a_batch_still_unfinished_is_named_with_what_happens_next():
    lines = interruptions({1: 0}, {1: 0, 3: 2})
    assert lines[0].startswith("batch 0 (batch_id 1) was interrupted in an earlier run and is")
    assert "still not finished" in lines[0]
    assert lines[1] == (
        "batch 2 (batch_id 3) was interrupted in this demo (no record row): the next run "
        "finishes it before taking a new batch"
    )


def test_nothing_interrupted_says_nothing():
    assert interruptions({}, {}) == []

"""The pure decisions of fetch: end of data, delivery classification, gaps; and reason texts."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tasks.core.delivery import (
    Recorded,
    classify,
    gap,
    is_end_of_data,
    judge_new,
    next_expected,
    normalise,
)
from tasks.validate.step import without_repeats

ACCENTED = "Ya se recolectó toda la información mínima necesaria"


@given(
    flips=st.lists(st.booleans(), min_size=len(ACCENTED), max_size=len(ACCENTED)),
    strip=st.sets(st.sampled_from(["ó", "í"])),
    suffix=st.sampled_from(["", ".", "!", " ", "\n"]),
)
def test_the_end_message_is_recognised_whatever_its_case_and_accents(flips, strip, suffix):
    text = ACCENTED
    for accented in strip:
        text = text.replace(accented, unicodedata.normalize("NFKD", accented)[0])
    text = "".join(c.upper() if flip else c for c, flip in zip(text, flips, strict=True))
    assert is_end_of_data(text + suffix)


@pytest.mark.parametrize(
    "detail",
    [
        "Número de grupo inválido",
        "Not Found",
        "",
        None,
        ["ok"],
        {"detail": ACCENTED},
        "toda la información necesaria",  # words missing: not the message
    ],
)
def test_other_answers_are_not_the_end(detail):
    assert not is_end_of_data(detail)


def test_normalise_strips_accents_and_punctuation():
    assert normalise("¡Información MÍNIMA, necesaria!") == "informacion minima necesaria"


recorded_lists = st.lists(
    st.builds(Recorded, st.integers(1, 99), st.integers(1, 9), st.sampled_from("abcdef")),
    max_size=5,
    unique_by=lambda r: r.sha256,
)


@given(recorded=recorded_lists, sha=st.sampled_from("abcdefg"))
def test_classification(recorded, sha):
    verdict = classify(recorded, sha)
    matching = [r for r in recorded if r.sha256 == sha]
    if matching:  # the same content again: a duplicate of that delivery
        assert (verdict.kind, verdict.batch_id) == ("duplicate", matching[0].batch_id)
    elif recorded:  # other content under the number: the next delivery, never a clash
        assert verdict.kind == "redelivery"
        assert verdict.delivery == max(r.delivery for r in recorded) + 1
    else:
        assert (verdict.kind, verdict.delivery) == ("new", 1)


@given(expected=st.none() | st.integers(0, 20), served=st.integers(0, 25))
def test_gaps(expected, served):
    missing = gap(expected, served)
    if expected is None:
        assert (missing is None) == (served in (0, 1))
    elif served > expected:
        assert missing == expected  # the first number never received
    else:
        assert missing is None  # the same window again, or a replay
    assert next_expected(expected, served) >= served + 1


@given(
    kind=st.sampled_from(["new", "redelivery"]),
    expected=st.none() | st.integers(0, 20),
    served=st.integers(0, 25),
    size=st.integers(1, 10**9),
    largest=st.none() | st.integers(1, 10**8),
    factor=st.floats(1.5, 20),
)
def test_new_content_is_stored_or_an_incident_with_its_reason(
    kind, expected, served, size, largest, factor
):
    verdict = judge_new(kind, expected, served, size, largest, factor)
    ahead = kind == "new" and gap(expected, served) is not None
    went_back = expected is not None and served < expected - 1
    too_big = largest is not None and size > factor * largest
    if ahead:
        assert verdict.outcome == "gap"
    elif went_back:
        assert verdict.outcome == "backwards"
        assert verdict.reason.startswith(f"backwards: batch {served} with new content after")
        assert verdict.expected_batch_number == expected
    elif too_big:
        assert verdict.outcome == "oversize"
        assert "FETCH_OVERSIZE_FACTOR" in verdict.reason
    else:
        assert verdict.outcome == {"new": "stored", "redelivery": "redelivery"}[kind]
        assert verdict.reason is None
    if verdict.outcome in ("gap", "backwards", "oversize"):
        assert verdict.reason.startswith(verdict.outcome)


@given(expected=st.integers(1, 20), size=st.integers(1, 10**6))
def test_the_time_window_resampling_the_newest_number_is_no_incident(expected, size):
    """The course's window: new content under the number just received, of a usual size."""
    verdict = judge_new("redelivery", expected, expected - 1, size, size, 5.0)
    assert verdict.outcome == "redelivery"


def test_a_duplicate_is_never_judged():
    with pytest.raises(ValueError, match="not judged"):
        judge_new("duplicate", 3, 1, 10, 10, 5.0)


def test_a_text_column_is_reported_once():
    fetch = ["column 'price' is not double on the wire: first offending value 'x'; kept as text"]
    table = ["column 'price' is string, not double", "column 'bath' is missing"]
    assert without_repeats(fetch, table) == [fetch[0], "column 'bath' is missing"]

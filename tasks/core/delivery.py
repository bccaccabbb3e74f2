"""Decisions about what the data API answered, as pure functions (no I/O).

- :func:`is_end_of_data`: the API's "every batch served" message, whatever its accents, case
  or exact wording (the course has shipped it with and without the accent on "mínima");
- :func:`classify`: what a body served under a batch number is, given what the ledger holds
  for that number: a new batch, another delivery of it (the API's time window resamples under
  the same number), or a duplicate of one already stored;
- :func:`gap`: whether a batch number skips ahead of the one the ledger expects.

``tasks.fetch`` feeds them from the API and the ledger and acts on their answers.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

#: the words that make the end-of-data message, after :func:`normalise`
END_OF_DATA_WORDS = frozenset({"recolecto", "toda", "informacion", "necesaria"})

Kind = Literal["new", "redelivery", "duplicate"]


def normalise(text: str) -> str:
    """Lowercase, accents stripped, anything but letters and digits turned into spaces."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).lower()
    return " ".join(re.findall(r"[a-z0-9]+", plain))


def is_end_of_data(detail: object) -> bool:
    """True when ``detail`` is the API's end-of-data message (accents and case ignored)."""
    if not isinstance(detail, str):
        return False
    return set(normalise(detail).split()) >= END_OF_DATA_WORDS


@dataclass(frozen=True)
class Recorded:
    """A delivery the ledger already holds under one batch number."""

    batch_id: int
    delivery: int
    sha256: str


@dataclass(frozen=True)
class Classification:
    kind: Kind
    delivery: int  # the delivery number to record (new, redelivery) or the one matched
    batch_id: int | None  # the matched row (duplicate)


def classify(recorded: Iterable[Recorded], sha256: str) -> Classification:
    """What a body with content ``sha256`` is, given the deliveries of its batch number."""
    rows = list(recorded)
    for row in rows:
        if row.sha256 == sha256:
            return Classification("duplicate", row.delivery, row.batch_id)
    if not rows:
        return Classification("new", 1, None)
    return Classification("redelivery", max(row.delivery for row in rows) + 1, None)


#: batch numbers a (group, day) may start with: the course's API has counted from 0 and from 1
FIRST_BATCH_NUMBERS = (0, 1)


def gap(expected: int | None, served: int) -> int | None:
    """The first missing batch number when ``served`` skips ahead of ``expected``, else None.

    ``expected`` None means nothing has been read yet: 0 or 1 are both a start. A number at or
    below the expected one is not a gap (the same window again, or a replay after a restart).
    """
    if expected is None:
        return None if served in FIRST_BATCH_NUMBERS else FIRST_BATCH_NUMBERS[-1]
    return expected if served > expected else None


def next_expected(expected: int | None, served: int) -> int:
    """The batch number expected after ``served`` was recorded."""
    return served + 1 if expected is None else max(expected, served + 1)


Incident = Literal["gap", "backwards", "oversize"]


@dataclass(frozen=True)
class Verdict:
    """What a new body (not a duplicate) becomes: ``stored`` or an incident, with its reason."""

    outcome: Literal["stored", "redelivery", "gap", "backwards", "oversize"]
    reason: str | None = None
    expected_batch_number: int | None = None  # gap, backwards: the number the ledger expected


def judge_new(
    kind: Kind,
    expected: int | None,
    served: int,
    payload_bytes: int,
    largest_accepted: int | None,
    oversize_factor: float,
) -> Verdict:
    """Whether a body with new content (``kind`` new or redelivery) is stored or an incident.

    - ``gap``: a new number ahead of the expected one (:func:`gap`);
    - ``backwards``: new content under a number below the last one received (the API went
      back and served something else: another group's cursor, a restart that resamples).
      The newest number again with new content is the time window resampling (a
      ``redelivery``), and an old number with the same content is a replay: a duplicate,
      never judged here;
    - ``oversize``: more than ``oversize_factor`` times the largest body accepted so far for
      the (group, day) (none accepted yet: no reference, never oversize).

    The first that applies, in that order; else ``stored`` / ``redelivery``.
    """
    if kind == "duplicate":
        raise ValueError("a duplicate is not judged: it stores nothing")
    missing = gap(expected, served) if kind == "new" else None
    if missing is not None:
        first = "0 or 1" if expected is None else str(missing)
        return Verdict("gap", f"gap: expected batch {first}, got {served}", missing)
    if expected is not None and served < expected - 1:
        return Verdict(
            "backwards",
            f"backwards: batch {served} with new content after batch {expected - 1} (the API "
            "went back)",
            expected,
        )
    if largest_accepted and payload_bytes > oversize_factor * largest_accepted:
        return Verdict(
            "oversize",
            f"oversize: {payload_bytes:,} bytes, {payload_bytes / largest_accepted:.1f}x the "
            f"largest body accepted so far ({largest_accepted:,} bytes; FETCH_OVERSIZE_FACTOR "
            f"is {oversize_factor:g})",
        )
    return Verdict("stored" if kind == "new" else "redelivery")

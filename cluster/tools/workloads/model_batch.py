"""A small curated batch in the cluster's ledger and lake (as validate and drift_check leave
one), for the train pod to train on: the pipeline's settings and Secret, mapped to here."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def curated_batch(env: dict[str, str], rows: int = 3000) -> int:
    from tests.support.served_model import put_curated_batch

    return put_curated_batch(env, rows, seed=21, batch_number=900, group_number=9)

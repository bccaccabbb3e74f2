"""Monitor windows as ``tasks.monitor`` records them, for the tests of their readers.

drift_check, the run summaries and the UI read ``monitor_windows``; their tests need windows
without running the monitor. :func:`add_window` writes one consumed window after the last one
(the log ids follow on, as the monitor's do), with a drifted ``state`` when it drifted.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select

from tasks.core.ledger import Ledger
from tasks.core.ledger_tables import MonitorWindow

WINDOW_END = datetime(2026, 5, 4, 14, 0, tzinfo=UTC)
DRIFTED_REASON = "state drifted: users now ask about Vermont"


def add_window(
    ledger: Ledger,
    *,
    model_name: str,
    version: str,
    decision: str = "drifted",
    rows: int = 4_812,
    acted_on_batch_id: int | None = None,
) -> int:
    """One consumed window of ``rows`` requests compared against ``version``; returns its id."""
    drifted = decision == "drifted"
    with ledger.session() as session:
        first = (session.scalar(select(func.max(MonitorWindow.last_log_id))) or 0) + 1
        row = MonitorWindow(
            first_log_id=first,
            last_log_id=first + rows - 1,
            window_start=WINDOW_END.replace(hour=13),
            window_end=WINDOW_END,
            rows=rows,
            consumed=decision != "too_few_rows",
            model_name=model_name,
            model_version=version,
            reference_batch_ids=[1],
            decision=decision,
            reasons=[DRIFTED_REASON] if drifted else [],
            drift_share=0.6 if drifted else 0.1,
            feature_scores={
                "state": {
                    "method": "jensenshannon",
                    "score": 0.41,
                    "threshold": 0.1,
                    "drifted": drifted,
                },
                "house_size": {
                    "method": "wasserstein",
                    "score": 0.22 if drifted else 0.02,
                    "threshold": 0.1,
                    "drifted": drifted,
                },
                "bed": {"method": "wasserstein", "score": 0.02, "threshold": 0.1, "drifted": False},
            },
            acted_on_batch_id=acted_on_batch_id,
        )
        session.add(row)
        session.flush()
        return row.id

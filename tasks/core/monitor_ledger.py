"""Monitor windows in the ledger: what tasks.monitor writes, drift_check and the UI read.

One place for the queries on ``monitor_windows`` so the monitor (writer), drift_check (the
latest window is one more reason to train) and the UI (the Monitoring page) read the same
rows the same way.
"""

from __future__ import annotations

from sqlalchemy import select, update

from tasks.core.ledger import Ledger
from tasks.core.ledger_tables import MonitorWindow


def latest_window(ledger: Ledger, model_name: str) -> MonitorWindow | None:
    """The newest window that read its rows (``consumed``) for ``model_name``, or None."""
    with ledger.session() as session:
        return session.scalars(
            select(MonitorWindow)
            .where(MonitorWindow.model_name == model_name, MonitorWindow.consumed.is_(True))
            .order_by(MonitorWindow.last_log_id.desc(), MonitorWindow.id.desc())
            .limit(1)
        ).first()


def recent_windows(ledger: Ledger, model_name: str, limit: int = 200) -> list[MonitorWindow]:
    """Up to ``limit`` newest windows of ``model_name`` (any decision), oldest first."""
    with ledger.session() as session:
        rows = session.scalars(
            select(MonitorWindow)
            .where(MonitorWindow.model_name == model_name)
            .order_by(MonitorWindow.id.desc())
            .limit(limit)
        ).all()
    return list(reversed(rows))


def mark_acted_on(ledger: Ledger, window_id: int, batch_id: int) -> None:
    """Record that ``batch_id``'s drift_check took window ``window_id`` as a reason."""
    with ledger.session() as session:
        session.execute(
            update(MonitorWindow)
            .where(MonitorWindow.id == window_id, MonitorWindow.acted_on_batch_id.is_(None))
            .values(acted_on_batch_id=batch_id)
        )

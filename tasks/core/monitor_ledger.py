"""Monitor windows in the ledger: what tasks.monitor writes, drift_check and the UI read.

One place for the queries on ``monitor_windows`` so the monitor (writer), drift_check (the
latest window is one more reason to train), serving's gauges and the UI (the Monitoring page)
read the same rows the same way.

Each inference-log row is read by one consumed window only: a window starts right after the
last consumed one (:func:`next_first_log_id`), and the partial unique index on
``first_log_id WHERE consumed`` lets one insert win when two monitors start at the same id
(:func:`record_window`: the other gets the winner's window back).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from tasks.core.ledger import Ledger
from tasks.core.ledger_tables import InferenceLog, MonitorWindow


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


def as_utc(value: datetime | None) -> datetime | None:
    """A ledger timestamp as an aware UTC datetime (SQLite gives them back naive)."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def next_first_log_id(ledger: Ledger, model_name: str) -> int:
    """Where the next window may start: after the last consumed window, or at id 1 (the
    window itself starts at the model's first row from there: :func:`log_span`)."""
    last = latest_window(ledger, model_name)
    return 1 if last is None else int(last.last_log_id) + 1


def window_ending_at(ledger: Ledger, model_name: str, window_end: datetime) -> MonitorWindow | None:
    """The window recorded for ``window_end`` (a re-run of the same scheduled run), if any;
    a consumed one first."""
    with ledger.session() as session:
        return session.scalars(
            select(MonitorWindow)
            .where(MonitorWindow.model_name == model_name, MonitorWindow.window_end == window_end)
            .order_by(MonitorWindow.consumed.desc(), MonitorWindow.id.desc())
            .limit(1)
        ).first()


def same_too_few(
    ledger: Ledger, model_name: str, first_log_id: int, last_log_id: int, rows: int
) -> MonitorWindow | None:
    """A too_few_rows window already recorded over exactly these rows (nothing new to say)."""
    with ledger.session() as session:
        return session.scalars(
            select(MonitorWindow)
            .where(
                MonitorWindow.model_name == model_name,
                MonitorWindow.decision == "too_few_rows",
                MonitorWindow.first_log_id == first_log_id,
                MonitorWindow.last_log_id == last_log_id,
                MonitorWindow.rows == rows,
            )
            .order_by(MonitorWindow.id.desc())
            .limit(1)
        ).first()


def log_span(
    ledger: Ledger, model_name: str, start_id: int, window_end: datetime
) -> tuple[int, int, int, datetime | None]:
    """(first id, last id, rows, first predicted_at) of the window from ``start_id``.

    The window ends at the newest row of the model logged before ``window_end`` and holds
    every row of the model from its first row at or after ``start_id`` to that one (a row of
    that id range logged a little later, by a slower writer, belongs to it too: no row is left
    behind between two windows). It starts at a row of its own model, so two models' windows
    never claim the same ``first_log_id``. No row: (start_id, start_id - 1, 0, None).
    """
    with ledger.session() as session:
        last = session.scalar(
            select(func.max(InferenceLog.id)).where(
                InferenceLog.model_name == model_name,
                InferenceLog.id >= start_id,
                InferenceLog.predicted_at < window_end,
            )
        )
        if last is None:
            return start_id, start_id - 1, 0, None
        first, rows, start = session.execute(
            select(
                func.min(InferenceLog.id), func.count(), func.min(InferenceLog.predicted_at)
            ).where(
                InferenceLog.model_name == model_name,
                InferenceLog.id.between(start_id, last),
            )
        ).one()
    return int(first), int(last), int(rows), as_utc(start)


def record_window(ledger: Ledger, window: MonitorWindow) -> tuple[MonitorWindow, bool]:
    """Insert ``window``; (row, True), or (the consumed window another monitor recorded at
    the same ``first_log_id`` first, False): that one read these rows."""
    try:
        with ledger.session() as session:
            session.add(window)
        return window, True
    except IntegrityError:
        if not window.consumed:
            raise
        with ledger.session() as session:
            winner = session.scalars(
                select(MonitorWindow).where(
                    MonitorWindow.first_log_id == window.first_log_id,
                    MonitorWindow.consumed.is_(True),
                )
            ).first()
        if winner is None:
            raise
        return winner, False

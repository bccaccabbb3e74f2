"""The ledger: what happened to every batch, in a relational database.

Its tables are SQLAlchemy 2 models (:mod:`tasks.core.ledger_tables`, re-exported here),
migrated by Alembic (``tasks/core/migrations``). SQLite for the embedded
default, PostgreSQL in compose and the cluster. Every later record (validation, drift
decision, training, promotion, inference log) refers to ``batches.id``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    create_engine,
    event,
    func,
    or_,
    select,
    text,
)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from tasks.core.ledger_tables import (
    INCIDENTS,
    REPLAY_RESOLUTION,
    STORED_INCIDENTS,
    ApiCursor,
    Base,
    Batch,
    BatchRecord,
    Delivery,
    DriftDecision,
    InferenceLog,
    MonitorWindow,
    Promotion,
    ShadowPrediction,
    Training,
    Validation,
    VersionScore,
    utcnow,
)

if TYPE_CHECKING:
    from tasks.core.settings import TaskSettings

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


class LedgerConflictError(RuntimeError):
    """The API served different content for a batch the ledger already holds."""


def make_ledger_engine(url: str, connect_timeout: int | None = None) -> Engine:
    """An engine for ``url``; creates the SQLite file's folder, enables SQLite's WAL.

    PostgreSQL connections give up after ``connect_timeout`` seconds (default 10), so a
    ledger that is down or unreachable fails a task fast.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    connect_args: dict[str, Any] = {}
    if parsed.get_backend_name() == "postgresql":
        connect_args["connect_timeout"] = connect_timeout or 10
    engine = create_engine(url, pool_pre_ping=True, connect_args=connect_args)
    if parsed.get_backend_name() == "sqlite":

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

    return engine


#: the PostgreSQL advisory lock that serialises the ledger's migrations (any fixed number)
MIGRATION_LOCK_KEY = 0x5245414C544F52  # "REALTOR"


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to the newest Alembic revision, or to ``revision`` (idempotent, and
    safe to run at once from several processes: each waits for the others' migration, then
    finds nothing to do).

    Without the lock, processes starting together on a new ledger (serving beside the first
    task, two DAG runs) each saw no ``alembic_version`` table and each created it: all but
    one failed with "relation alembic_version already exists".
    """
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":  # released when the transaction ends
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
            )
        elif connection.dialect.name == "sqlite":  # SQLite's write lock, before any read
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


class Ledger:
    """Reads and writes of the ledger; each method is one transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @classmethod
    def of(cls, settings: TaskSettings) -> Ledger:
        """The ledger of ``LEDGER_URL``, migrated, with ``LEDGER_CONNECT_TIMEOUT_SECONDS``."""
        return cls.open(
            settings.ledger_url, connect_timeout=settings.ledger_connect_timeout_seconds
        )

    @classmethod
    def open(cls, url: str, *, upgrade: bool = True, connect_timeout: int | None = None) -> Ledger:
        engine = make_ledger_engine(url, connect_timeout)
        if upgrade:
            migrate(engine)
        return cls(engine)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._sessions.begin() as session:
            yield session

    def find_batch(self, group_number: int, day: str, batch_number: int) -> Batch | None:
        """The first delivery of a batch number (see :meth:`deliveries_of` for all of them)."""
        rows = self.deliveries_of(group_number, day, batch_number)
        return rows[0] if rows else None

    def deliveries_of(self, group_number: int, day: str, batch_number: int) -> list[Batch]:
        """Every stored delivery of a batch number, first delivery first."""
        with self.session() as session:
            return list(
                session.scalars(
                    select(Batch)
                    .where(
                        Batch.group_number == group_number,
                        Batch.day == day,
                        Batch.batch_number == batch_number,
                    )
                    .order_by(Batch.delivery)
                )
            )

    def get_batch(self, batch_id: int) -> Batch:
        with self.session() as session:
            batch = session.get(Batch, batch_id)
        if batch is None:
            raise LookupError(
                f"no batch with id {batch_id} in the ledger: pass the batch_id that fetch "
                "returned (its XCom), for the same LEDGER_URL"
            )
        return batch

    def batches(self, group_number: int | None = None, day: str | None = None) -> list[Batch]:
        query = select(Batch).order_by(Batch.id)
        if group_number is not None:
            query = query.where(Batch.group_number == group_number)
        if day is not None:
            query = query.where(Batch.day == day)
        with self.session() as session:
            return list(session.scalars(query))

    def record_batch(self, batch: Batch) -> tuple[Batch, bool]:
        """Insert ``batch`` as a delivery of its batch number: (row, created).

        The same content (sha256) under the same number is the row already there; other
        content under the same number becomes the next delivery, never an overwrite.
        """
        for _ in range(5):
            existing = self.deliveries_of(batch.group_number, batch.day, batch.batch_number)
            for row in existing:
                if row.sha256 == batch.sha256:
                    return row, False
            batch.delivery = max((row.delivery for row in existing), default=0) + 1
            try:
                with self.session() as session:
                    session.add(batch)
                    self._advance_cursor(session, batch.group_number, batch.day, batch.batch_number)
                return batch, True
            except IntegrityError:  # a concurrent run recorded this number first: look again
                continue
        raise LedgerConflictError(
            f"batch {batch.batch_number} of group {batch.group_number}, day {batch.day!r}: "
            "five concurrent runs recorded it at once; re-run the fetch"
        )

    def record_delivery(self, delivery: Delivery, batch: Batch | None) -> Delivery:
        """One transaction: the batch row (when there is one), the delivery, the cursor.

        Raises :class:`~sqlalchemy.exc.IntegrityError` when a concurrent run recorded the
        same batch number or content first (the caller classifies again and retries).
        """
        with self.session() as session:
            if batch is not None:
                session.add(batch)
                session.flush()
                delivery.batch_id = batch.id
            session.add(delivery)
            if delivery.batch_number is not None:
                self._advance_cursor(
                    session, delivery.group_number, delivery.day, delivery.batch_number
                )
            session.flush()
        return delivery

    def find_delivery(self, payload_sha256: str, received_at: datetime) -> Delivery | None:
        """The delivery of this body received at this instant (a retry's check: done?)."""
        with self.session() as session:
            return session.scalar(
                select(Delivery).where(
                    Delivery.payload_sha256 == payload_sha256,
                    Delivery.received_at == received_at,
                )
            )

    def deliveries(self, group_number: int | None = None, day: str | None = None) -> list[Delivery]:
        query = select(Delivery).order_by(Delivery.id)
        if group_number is not None:
            query = query.where(Delivery.group_number == group_number)
        if day is not None:
            query = query.where(Delivery.day == day)
        with self.session() as session:
            return list(session.scalars(query))

    def largest_accepted_payload(self, group_number: int, day: str) -> int | None:
        """The largest body of (group, day) stored and not an open incident (None: none yet)."""
        with self.session() as session:
            return session.scalar(
                select(func.max(Delivery.payload_bytes)).where(
                    Delivery.group_number == group_number,
                    Delivery.day == day,
                    Delivery.batch_id.is_not(None),
                    or_(Delivery.outcome.not_in(INCIDENTS), Delivery.resolved_at.is_not(None)),
                )
            )

    def unfinished_batches(self, group_number: int, day: str) -> list[Batch]:
        """Batches of (group, day) a run started and did not finish, oldest first.

        Started: validate recorded its outcome, or the batch came with an incident (gap,
        backwards, oversize) a person has accepted (``--resolve-incidents``; a replay is not
        an acceptance: the API serves the batch again). Not finished: no ``batch_records``
        row (record did not run: the run was killed, or a step failed).
        """
        accepted = (
            select(Delivery.batch_id)
            .where(
                Delivery.batch_id.is_not(None),
                Delivery.outcome.in_(STORED_INCIDENTS),
                Delivery.resolved_at.is_not(None),
                Delivery.resolution != REPLAY_RESOLUTION,
            )
            .scalar_subquery()
        )
        validated = select(Validation.batch_id).scalar_subquery()
        recorded = select(BatchRecord.batch_id).scalar_subquery()
        with self.session() as session:
            return list(
                session.scalars(
                    select(Batch)
                    .where(
                        Batch.group_number == group_number,
                        Batch.day == day,
                        or_(Batch.id.in_(validated), Batch.id.in_(accepted)),
                        Batch.id.not_in(recorded),
                    )
                    .order_by(Batch.id)
                )
            )

    def open_incidents(self, group_number: int, day: str) -> list[Delivery]:
        """Rejected deliveries and gaps of (group, day) nobody has resolved yet."""
        with self.session() as session:
            return list(
                session.scalars(
                    select(Delivery)
                    .where(
                        Delivery.group_number == group_number,
                        Delivery.day == day,
                        Delivery.outcome.in_(INCIDENTS),
                        Delivery.resolved_at.is_(None),
                    )
                    .order_by(Delivery.id)
                )
            )

    def resolve_incidents(self, group_number: int, day: str, resolution: str) -> list[int]:
        """Mark the open incidents of (group, day) resolved; their ids."""
        with self.session() as session:
            rows = list(
                session.scalars(
                    select(Delivery).where(
                        Delivery.group_number == group_number,
                        Delivery.day == day,
                        Delivery.outcome.in_(INCIDENTS),
                        Delivery.resolved_at.is_(None),
                    )
                )
            )
            for row in rows:
                row.resolved_at = utcnow()
                row.resolution = resolution
            return [row.id for row in rows]

    def _advance_cursor(
        self, session: Session, group_number: int, day: str, batch_number: int
    ) -> None:
        from tasks.core.delivery import next_expected

        cursor = session.get(ApiCursor, (group_number, day))
        if cursor is None:
            cursor = ApiCursor(group_number=group_number, day=day, last_batch_number=0)
            session.add(cursor)
        cursor.last_batch_number = max(cursor.last_batch_number or 0, batch_number)
        cursor.next_batch_number = next_expected(cursor.next_batch_number, batch_number)
        cursor.updated_at = utcnow()

    def cursor(self, group_number: int, day: str) -> ApiCursor | None:
        with self.session() as session:
            return session.get(ApiCursor, (group_number, day))

    def mark_exhausted(self, group_number: int, day: str) -> None:
        with self.session() as session:
            cursor = session.get(ApiCursor, (group_number, day))
            if cursor is None:
                cursor = ApiCursor(group_number=group_number, day=day, last_batch_number=0)
                session.add(cursor)
            if cursor.exhausted_at is None:
                cursor.exhausted_at = utcnow()
            cursor.updated_at = utcnow()

    def reset_cursor(self, group_number: int, day: str) -> list[int]:
        """Forget how far (group, day) was read; stored batches stay (a replay dedups them).

        Open incidents of (group, day) are resolved by the replay: the API serves again from
        its first batch, so a missing batch comes again and a rejected one is asked again.
        """
        with self.session() as session:
            cursor = session.get(ApiCursor, (group_number, day))
            if cursor is not None:
                cursor.last_batch_number = 0
                cursor.next_batch_number = None
                cursor.exhausted_at = None
                cursor.updated_at = utcnow()
        return self.resolve_incidents(group_number, day, REPLAY_RESOLUTION)


__all__ = [
    "INCIDENTS",
    "MIGRATIONS_DIR",
    "MIGRATION_LOCK_KEY",
    "REPLAY_RESOLUTION",
    "STORED_INCIDENTS",
    "ApiCursor",
    "Base",
    "Batch",
    "BatchRecord",
    "Delivery",
    "DriftDecision",
    "InferenceLog",
    "Ledger",
    "LedgerConflictError",
    "MonitorWindow",
    "Promotion",
    "ShadowPrediction",
    "Training",
    "Validation",
    "VersionScore",
    "make_ledger_engine",
    "migrate",
    "utcnow",
]

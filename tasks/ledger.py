"""The ledger: what happened to every batch, in a relational database.

SQLAlchemy 2 models, migrated by Alembic (``tasks/migrations``). SQLite for the embedded
default, PostgreSQL in compose and the cluster. Every later record (validation, drift
decision, training, promotion, inference log) refers to ``batches.id``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
    create_engine,
    event,
    select,
)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class Batch(Base):
    """One batch served by the data API and stored in the raw zone."""

    __tablename__ = "batches"
    __table_args__ = (
        UniqueConstraint("group_number", "day", "batch_number", name="uq_batches_group_day_batch"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    group_number: Mapped[int] = mapped_column(Integer)
    day: Mapped[str] = mapped_column(String(32))
    batch_number: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    raw_key: Mapped[str] = mapped_column(String(512))
    rows: Mapped[int] = mapped_column(BigInteger)
    bytes: Mapped[int] = mapped_column(BigInteger)
    schema_problems: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), default="raw")
    fetched_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ApiCursor(Base):
    """How far the pipeline has read one (group, day) of the data API."""

    __tablename__ = "api_cursors"

    group_number: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[str] = mapped_column(String(32), primary_key=True)
    last_batch_number: Mapped[int] = mapped_column(Integer, default=0)
    exhausted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class LedgerConflictError(RuntimeError):
    """The API served different content for a batch the ledger already holds."""


def make_ledger_engine(url: str) -> Engine:
    """An engine for ``url``; creates the SQLite file's folder, enables SQLite's WAL."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, pool_pre_ping=True)
    if parsed.get_backend_name() == "sqlite":

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

    return engine


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision (idempotent)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


class Ledger:
    """Reads and writes of the ledger; each method is one transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @classmethod
    def open(cls, url: str, *, upgrade: bool = True) -> Ledger:
        engine = make_ledger_engine(url)
        if upgrade:
            migrate(engine)
        return cls(engine)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._sessions.begin() as session:
            yield session

    def find_batch(self, group_number: int, day: str, batch_number: int) -> Batch | None:
        with self.session() as session:
            return session.scalar(
                select(Batch).where(
                    Batch.group_number == group_number,
                    Batch.day == day,
                    Batch.batch_number == batch_number,
                )
            )

    def get_batch(self, batch_id: int) -> Batch:
        with self.session() as session:
            batch = session.get(Batch, batch_id)
        if batch is None:
            raise LookupError(f"no batch with id {batch_id} in the ledger")
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
        """Insert ``batch`` unless its (group, day, batch number) is there: (row, created).

        The same content again is a no-op; different content for the same batch is a
        :class:`LedgerConflictError`, never a silent overwrite.
        """
        existing = self.find_batch(batch.group_number, batch.day, batch.batch_number)
        if existing is None:
            try:
                with self.session() as session:
                    session.add(batch)
                    self._advance_cursor(session, batch.group_number, batch.day, batch.batch_number)
                return batch, True
            except IntegrityError:  # a concurrent run recorded it first
                existing = self.find_batch(batch.group_number, batch.day, batch.batch_number)
                if existing is None:
                    raise
        if existing.sha256 != batch.sha256:
            raise LedgerConflictError(
                f"batch {batch.batch_number} of group {batch.group_number}, day {batch.day!r} is "
                f"already recorded with sha256 {existing.sha256[:12]}, but the API now served "
                f"{batch.sha256[:12]}; use another day, or reset the ledger for a new replay"
            )
        return existing, False

    def _advance_cursor(
        self, session: Session, group_number: int, day: str, batch_number: int
    ) -> None:
        cursor = session.get(ApiCursor, (group_number, day))
        if cursor is None:
            cursor = ApiCursor(group_number=group_number, day=day, last_batch_number=0)
            session.add(cursor)
        cursor.last_batch_number = max(cursor.last_batch_number or 0, batch_number)
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

    def reset_cursor(self, group_number: int, day: str) -> None:
        """Forget how far (group, day) was read; stored batches stay (a replay dedups them)."""
        with self.session() as session:
            cursor = session.get(ApiCursor, (group_number, day))
            if cursor is not None:
                cursor.last_batch_number = 0
                cursor.exhausted_at = None
                cursor.updated_at = utcnow()


class Validation(Base):
    """The validate step's outcome for one batch: curated (maybe with rows dropped) or quarantined."""

    __tablename__ = "validations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id"), index=True)
    outcome: Mapped[str] = mapped_column(String(8))  # pass | warn | fail
    status: Mapped[str] = mapped_column(String(16))  # curated | quarantined
    rows_in: Mapped[int] = mapped_column(BigInteger)
    rows_out: Mapped[int] = mapped_column(BigInteger)
    rows_dropped: Mapped[int] = mapped_column(BigInteger)
    curated_key: Mapped[str | None] = mapped_column(String(512), nullable=True)
    report_key: Mapped[str | None] = mapped_column(String(512), nullable=True)
    report_html_key: Mapped[str | None] = mapped_column(String(512), nullable=True)
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class DriftDecision(Base):
    """Whether a batch justified training, and why (every reason a person can read)."""

    __tablename__ = "drift_decisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id"), index=True)
    decision: Mapped[str] = mapped_column(String(8))  # train | skip
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    drift_share: Mapped[float | None] = mapped_column(Float, nullable=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    reference_model_version: Mapped[str | None] = mapped_column(String(32), nullable=True)
    report_key: Mapped[str | None] = mapped_column(String(512), nullable=True)
    report_html_key: Mapped[str | None] = mapped_column(String(512), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Training(Base):
    """One training run: the MLflow run, the model version it registered, and why it ran."""

    __tablename__ = "trainings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id"), index=True)
    decision_id: Mapped[int | None] = mapped_column(ForeignKey("drift_decisions.id"), nullable=True)
    mlflow_run_id: Mapped[str] = mapped_column(String(64))
    model_name: Mapped[str] = mapped_column(String(128))
    model_version: Mapped[str] = mapped_column(String(32))
    training_batch_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Promotion(Base):
    """The promote step's verdict on a challenger, promoted or rejected, with its reasons."""

    __tablename__ = "promotions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id"), index=True)
    training_id: Mapped[int | None] = mapped_column(ForeignKey("trainings.id"), nullable=True)
    model_name: Mapped[str] = mapped_column(String(128))
    challenger_version: Mapped[str] = mapped_column(String(32))
    champion_version: Mapped[str | None] = mapped_column(String(32), nullable=True)
    promoted: Mapped[bool] = mapped_column(Boolean)
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    challenger_metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    champion_metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class InferenceLog(Base):
    """One prediction served (written by serving in batches), and its export to the lake.

    ``features`` holds the record's model inputs as JSON (canonical values; the date as ISO
    text). ``export_key`` is set when an exporter claims the row for a Parquet object under
    ``raw/inference/`` and ``exported_at`` once that object is written, so no row is exported
    twice and a failed export is retried with the same rows under the same key.
    """

    __tablename__ = "inference_log"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    request_id: Mapped[str] = mapped_column(String(64), index=True)
    row_index: Mapped[int] = mapped_column(Integer, default=0)
    model_name: Mapped[str] = mapped_column(String(128))
    model_version: Mapped[str] = mapped_column(String(32))
    predicted_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, index=True
    )
    price: Mapped[float] = mapped_column(Float)
    features: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    export_key: Mapped[str | None] = mapped_column(String(512), nullable=True, index=True)
    exported_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

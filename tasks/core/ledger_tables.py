"""The ledger's tables: what happened to every batch, one SQLAlchemy 2 model per record.

Migrated by Alembic (``tasks/core/migrations``); read and written through
:class:`tasks.core.ledger.Ledger`. Every later record (validation, drift decision, training,
promotion, inference log) refers to ``batches.id``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class Batch(Base):
    """One batch served by the data API and stored in the raw zone."""

    __tablename__ = "batches"
    __table_args__ = (
        UniqueConstraint(
            "group_number", "day", "batch_number", "delivery", name="uq_batches_delivery"
        ),
        UniqueConstraint(
            "group_number", "day", "batch_number", "sha256", name="uq_batches_content"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    group_number: Mapped[int] = mapped_column(Integer)
    day: Mapped[str] = mapped_column(String(32))
    batch_number: Mapped[int] = mapped_column(Integer)
    #: 1 for the first content served under this batch number; 2, 3... for other content
    #: served under the same number (the API's time window resamples inside its 5 minutes)
    delivery: Mapped[int] = mapped_column(Integer, default=1)
    #: the delivery's identity: sha256 of the body as received (older rows: of the Parquet)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    raw_key: Mapped[str] = mapped_column(String(512))
    rows: Mapped[int] = mapped_column(BigInteger)
    bytes: Mapped[int] = mapped_column(BigInteger)
    #: the body as received, gzip-compressed, byte for byte (None on rows older than 0004)
    payload_key: Mapped[str | None] = mapped_column(String(512), nullable=True)
    payload_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    schema_problems: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), default="raw")
    fetched_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ApiCursor(Base):
    """How far the pipeline has read one (group, day) of the data API."""

    __tablename__ = "api_cursors"

    group_number: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[str] = mapped_column(String(32), primary_key=True)
    last_batch_number: Mapped[int] = mapped_column(Integer, default=0)
    #: the batch number the API should serve next; None: nothing read yet (0 or 1 expected)
    next_batch_number: Mapped[int | None] = mapped_column(Integer, nullable=True)
    exhausted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Delivery(Base):
    """One answer of the data API that carried a body: what came, where it is, what became of it.

    ``outcome``: ``stored`` (a new batch), ``redelivery`` (other content under a batch number
    already stored: a delivery of its own, with its own batch row), ``duplicate`` (the same
    content again: nothing new stored), ``rejected`` (a body the fetch refuses: kept raw with
    its reason, no batch row), ``gap`` (stored, but its number skipped ahead of the expected
    one), ``backwards`` (stored, but new content under a number below the last one received),
    ``oversize`` (stored, but far larger than any body accepted before for its group and day).
    A ``rejected``, ``gap``, ``backwards`` or ``oversize`` delivery is an incident: fetch refuses to read on for its
    (group, day) until it is resolved (a replay, or ``tasks.fetch --resolve``).
    """

    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    group_number: Mapped[int] = mapped_column(Integer)
    day: Mapped[str] = mapped_column(String(32))
    batch_number: Mapped[int | None] = mapped_column(Integer, nullable=True)
    outcome: Mapped[str] = mapped_column(String(16))
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("batches.id"), nullable=True)
    payload_key: Mapped[str] = mapped_column(String(512))
    payload_sha256: Mapped[str] = mapped_column(String(64))
    payload_bytes: Mapped[int] = mapped_column(BigInteger)
    rows: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    expected_batch_number: Mapped[int | None] = mapped_column(Integer, nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    resolution: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (Index("ix_deliveries_group_day", "group_number", "day"),)

    @property
    def is_incident(self) -> bool:
        return self.outcome in INCIDENTS and self.resolved_at is None


#: delivery outcomes that stop the fetch of their (group, day) until resolved
INCIDENTS = ("rejected", "gap", "backwards", "oversize")


#: the resolution a replay writes on the incidents it resolves (the API serves them again)
REPLAY_RESOLUTION = "replay: the API and the cursor started over"


#: incidents whose batch is stored: once resolved, the pipeline runs on it like any batch
STORED_INCIDENTS = ("gap", "backwards", "oversize")


class Validation(Base):
    """The validate step's outcome for one batch: curated (maybe with rows dropped) or quarantined."""

    __tablename__ = "validations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id"), index=True, unique=True)
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
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id"), index=True, unique=True)
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
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id"), index=True, unique=True)
    decision_id: Mapped[int | None] = mapped_column(ForeignKey("drift_decisions.id"), nullable=True)
    mlflow_run_id: Mapped[str] = mapped_column(String(64))
    model_name: Mapped[str] = mapped_column(String(128))
    model_version: Mapped[str] = mapped_column(String(32))
    training_batch_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: the split promote re-creates: training and holdout rows, and the holdout share used
    rows_train: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    rows_holdout: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    holdout_share: Mapped[float | None] = mapped_column(Float, nullable=True)
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Promotion(Base):
    """The promote step's verdict on a challenger, promoted or rejected, with its reasons."""

    __tablename__ = "promotions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id"), index=True, unique=True)
    training_id: Mapped[int | None] = mapped_column(ForeignKey("trainings.id"), nullable=True)
    model_name: Mapped[str] = mapped_column(String(128))
    challenger_version: Mapped[str] = mapped_column(String(32))
    champion_version: Mapped[str | None] = mapped_column(String(32), nullable=True)
    promoted: Mapped[bool] = mapped_column(Boolean)
    #: held for the minimum shadow period (0006): not promoted yet, not final either; a re-run
    #: of promote evaluates it again
    held: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    challenger_metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    champion_metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class BatchRecord(Base):
    """The record step's mark: the batch's run ended, its summary is written (migration 0005).

    A batch the pipeline started (it has a validation, or it is an accepted incident) and
    that has no row here was interrupted: fetch returns it again before asking the API for a
    new batch (:meth:`Ledger.unfinished_batches`), so the run finishes it.
    """

    __tablename__ = "batch_records"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id"), index=True, unique=True)
    summary_key: Mapped[str | None] = mapped_column(String(512), nullable=True)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class InferenceLog(Base):
    """One prediction served (written by serving in batches), and its export to the lake.

    ``features`` holds the record's model inputs as JSON (canonical values; the date as ISO
    text). ``export_key`` is set when an exporter claims the row for a Parquet object under
    ``raw/inference/`` and ``exported_at`` once that object is written, so no row is exported
    twice and a failed export is retried with the same rows under the same key.
    """

    __tablename__ = "inference_log"
    #: the exporter's unfinished claims, found without walking every exported row (0007)
    __table_args__ = (Index("ix_inference_log_unexported", "exported_at", "export_key"),)

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


#: a monitor window's decisions
WINDOW_DECISIONS = ("stable", "drifted", "too_few_rows")


class MonitorWindow(Base):
    """One window of live traffic that ``tasks.monitor`` read, and what it found (0006).

    The window covers the inference log's ids ``first_log_id..last_log_id`` (inclusive) logged
    before ``window_end``. ``consumed``: the window read its rows, and the next starts after
    ``last_log_id``; only one consumed window can start at a given id (a partial unique
    index), so two monitors at once never read a row twice. A ``too_few_rows`` window does
    not consume: its rows wait for the next window. ``feature_scores`` maps each input
    feature to ``{"method", "score", "threshold", "drifted"}``.
    """

    __tablename__ = "monitor_windows"
    __table_args__ = (
        Index(
            "uq_monitor_windows_first_log_id",
            "first_log_id",
            unique=True,
            postgresql_where=text("consumed"),
            sqlite_where=text("consumed = 1"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    first_log_id: Mapped[int] = mapped_column(BigInteger)
    last_log_id: Mapped[int] = mapped_column(BigInteger)
    window_start: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    window_end: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    rows: Mapped[int] = mapped_column(BigInteger)
    consumed: Mapped[bool] = mapped_column(Boolean)
    model_name: Mapped[str] = mapped_column(String(128))
    model_version: Mapped[str | None] = mapped_column(String(32), nullable=True)
    reference_batch_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    decision: Mapped[str] = mapped_column(String(16))  # one of WINDOW_DECISIONS
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    drift_share: Mapped[float | None] = mapped_column(Float, nullable=True)
    feature_scores: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    report_key: Mapped[str | None] = mapped_column(String(512), nullable=True)
    report_html_key: Mapped[str | None] = mapped_column(String(512), nullable=True)
    #: the batch whose drift_check took this window as a reason; NULL on a drifted window
    #: means "live drift, no labelled data yet"
    acted_on_batch_id: Mapped[int | None] = mapped_column(ForeignKey("batches.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ShadowPrediction(Base):
    """A live request the shadow challenger scored too, beside production's answer (0006)."""

    __tablename__ = "shadow_predictions"
    __table_args__ = (
        Index("ix_shadow_predictions_challenger", "model_name", "challenger_version"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    request_id: Mapped[str] = mapped_column(String(64))
    row_index: Mapped[int] = mapped_column(Integer, default=0)
    model_name: Mapped[str] = mapped_column(String(128))
    production_version: Mapped[str] = mapped_column(String(32))
    challenger_version: Mapped[str] = mapped_column(String(32))
    predicted_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, index=True
    )
    production_price: Mapped[float] = mapped_column(Float)
    challenger_price: Mapped[float] = mapped_column(Float)


class VersionScore(Base):
    """A model version scored on the holdout of one training batch (0006): the leaderboard."""

    __tablename__ = "version_scores"
    __table_args__ = (
        UniqueConstraint(
            "model_name", "model_version", "holdout_batch_id", name="uq_version_scores"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_name: Mapped[str] = mapped_column(String(128))
    model_version: Mapped[str] = mapped_column(String(32))
    #: the batch whose training split made the holdout (trainings.batch_id)
    holdout_batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id"), index=True)
    holdout_rows: Mapped[int] = mapped_column(BigInteger)
    mae: Mapped[float] = mapped_column(Float)
    rmse: Mapped[float] = mapped_column(Float)
    mlflow_run_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    scored_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

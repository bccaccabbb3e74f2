"""monitoring: live-traffic windows, shadow predictions, versions scored on one holdout

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07

- ``monitor_windows``: what ``tasks.monitor`` found in one window of the inference log (the
  ids it read, the drift of live inputs against the production model's training data, the
  decision ``stable`` | ``drifted`` | ``too_few_rows`` and its reasons). A window that read
  its rows (``consumed``) is the only one starting at its first id: two monitors at once
  cannot both read a row. A ``too_few_rows`` window reads nothing, so the next one starts
  at the same id. ``acted_on_batch_id``: the batch whose drift_check took the window as a
  reason (NULL on a drifted window: live drift, no labelled data yet).
- ``shadow_predictions``: a live request scored by the shadow challenger too, off the
  request path (serving, ``SERVING_SHADOW=true``), beside the production answer it got.
- ``promotions.held``: a promotion promote held for its minimum shadow period
  (``PROMOTE_MIN_SHADOW_REQUESTS``): not final, a re-run evaluates it again.
- ``version_scores``: each model version scored on one holdout (the leaderboard scores every
  version on the newest one, so versions are compared on the same rows).
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_BIGINT_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "monitor_windows",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("first_log_id", sa.BigInteger(), nullable=False),
        sa.Column("last_log_id", sa.BigInteger(), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("consumed", sa.Boolean(), nullable=False),
        sa.Column("model_name", sa.String(128), nullable=False),
        sa.Column("model_version", sa.String(32), nullable=True),
        sa.Column("reference_batch_ids", sa.JSON(), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("drift_share", sa.Float(), nullable=True),
        sa.Column("feature_scores", sa.JSON(), nullable=False),
        sa.Column("report_key", sa.String(512), nullable=True),
        sa.Column("report_html_key", sa.String(512), nullable=True),
        sa.Column("acted_on_batch_id", sa.Integer(), sa.ForeignKey("batches.id"), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "uq_monitor_windows_first_log_id",
        "monitor_windows",
        ["first_log_id"],
        unique=True,
        postgresql_where=sa.text("consumed"),
        sqlite_where=sa.text("consumed = 1"),
    )
    op.create_index("ix_monitor_windows_window_end", "monitor_windows", ["window_end"])
    op.create_table(
        "shadow_predictions",
        sa.Column("id", _BIGINT_ID, primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("row_index", sa.Integer(), nullable=False),
        sa.Column("model_name", sa.String(128), nullable=False),
        sa.Column("production_version", sa.String(32), nullable=False),
        sa.Column("challenger_version", sa.String(32), nullable=False),
        sa.Column("predicted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("production_price", sa.Float(), nullable=False),
        sa.Column("challenger_price", sa.Float(), nullable=False),
    )
    op.create_index(
        "ix_shadow_predictions_challenger",
        "shadow_predictions",
        ["model_name", "challenger_version"],
    )
    op.create_index("ix_shadow_predictions_predicted_at", "shadow_predictions", ["predicted_at"])
    op.create_table(
        "version_scores",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("model_name", sa.String(128), nullable=False),
        sa.Column("model_version", sa.String(32), nullable=False),
        sa.Column("holdout_batch_id", sa.Integer(), sa.ForeignKey("batches.id"), nullable=False),
        sa.Column("holdout_rows", sa.BigInteger(), nullable=False),
        sa.Column("mae", sa.Float(), nullable=False),
        sa.Column("rmse", sa.Float(), nullable=False),
        sa.Column("mlflow_run_id", sa.String(64), nullable=True),
        sa.Column("scored_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint(
            "model_name", "model_version", "holdout_batch_id", name="uq_version_scores"
        ),
    )
    op.create_index("ix_version_scores_holdout", "version_scores", ["holdout_batch_id"])
    op.add_column(
        "promotions",
        sa.Column("held", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    op.drop_column("promotions", "held")
    op.drop_index("ix_version_scores_holdout", table_name="version_scores")
    op.drop_table("version_scores")
    op.drop_index("ix_shadow_predictions_predicted_at", table_name="shadow_predictions")
    op.drop_index("ix_shadow_predictions_challenger", table_name="shadow_predictions")
    op.drop_table("shadow_predictions")
    op.drop_index("ix_monitor_windows_window_end", table_name="monitor_windows")
    op.drop_index("uq_monitor_windows_first_log_id", table_name="monitor_windows")
    op.drop_table("monitor_windows")

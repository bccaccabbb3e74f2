"""validations, drift decisions, trainings and promotions

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _created_at() -> sa.Column:
    return sa.Column("created_at", sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    op.create_table(
        "validations",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("batch_id", sa.Integer(), sa.ForeignKey("batches.id"), nullable=False),
        sa.Column("outcome", sa.String(8), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("rows_in", sa.BigInteger(), nullable=False),
        sa.Column("rows_out", sa.BigInteger(), nullable=False),
        sa.Column("rows_dropped", sa.BigInteger(), nullable=False),
        sa.Column("curated_key", sa.String(512), nullable=True),
        sa.Column("report_key", sa.String(512), nullable=True),
        sa.Column("report_html_key", sa.String(512), nullable=True),
        sa.Column("reasons", sa.JSON(), nullable=False),
        _created_at(),
    )
    op.create_index("ix_validations_batch_id", "validations", ["batch_id"])
    op.create_table(
        "drift_decisions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("batch_id", sa.Integer(), sa.ForeignKey("batches.id"), nullable=False),
        sa.Column("decision", sa.String(8), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("drift_share", sa.Float(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("reference_model_version", sa.String(32), nullable=True),
        sa.Column("report_key", sa.String(512), nullable=True),
        sa.Column("report_html_key", sa.String(512), nullable=True),
        _created_at(),
    )
    op.create_index("ix_drift_decisions_batch_id", "drift_decisions", ["batch_id"])
    op.create_table(
        "trainings",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("batch_id", sa.Integer(), sa.ForeignKey("batches.id"), nullable=False),
        sa.Column("decision_id", sa.Integer(), sa.ForeignKey("drift_decisions.id"), nullable=True),
        sa.Column("mlflow_run_id", sa.String(64), nullable=False),
        sa.Column("model_name", sa.String(128), nullable=False),
        sa.Column("model_version", sa.String(32), nullable=False),
        sa.Column("training_batch_ids", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        _created_at(),
    )
    op.create_index("ix_trainings_batch_id", "trainings", ["batch_id"])
    op.create_table(
        "promotions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("batch_id", sa.Integer(), sa.ForeignKey("batches.id"), nullable=False),
        sa.Column("training_id", sa.Integer(), sa.ForeignKey("trainings.id"), nullable=True),
        sa.Column("model_name", sa.String(128), nullable=False),
        sa.Column("challenger_version", sa.String(32), nullable=False),
        sa.Column("champion_version", sa.String(32), nullable=True),
        sa.Column("promoted", sa.Boolean(), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("challenger_metrics", sa.JSON(), nullable=False),
        sa.Column("champion_metrics", sa.JSON(), nullable=False),
        _created_at(),
    )
    op.create_index("ix_promotions_batch_id", "promotions", ["batch_id"])


def downgrade() -> None:
    for table in ("promotions", "trainings", "drift_decisions", "validations"):
        op.drop_index(f"ix_{table}_batch_id", table_name=table)
        op.drop_table(table)

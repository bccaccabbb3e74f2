"""inference log (written by serving)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inference_log",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("row_index", sa.Integer(), nullable=False),
        sa.Column("model_name", sa.String(128), nullable=False),
        sa.Column("model_version", sa.String(32), nullable=False),
        sa.Column("predicted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("price", sa.Float(), nullable=False),
        sa.Column("features", sa.JSON(), nullable=False),
        sa.Column("export_key", sa.String(512), nullable=True),
        sa.Column("exported_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_inference_log_request_id", "inference_log", ["request_id"])
    op.create_index("ix_inference_log_predicted_at", "inference_log", ["predicted_at"])
    op.create_index("ix_inference_log_export_key", "inference_log", ["export_key"])


def downgrade() -> None:
    for column in ("export_key", "predicted_at", "request_id"):
        op.drop_index(f"ix_inference_log_{column}", table_name="inference_log")
    op.drop_table("inference_log")

"""batches and api cursors

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "batches",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("group_number", sa.Integer(), nullable=False),
        sa.Column("day", sa.String(32), nullable=False),
        sa.Column("batch_number", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("raw_key", sa.String(512), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("schema_problems", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint(
            "group_number", "day", "batch_number", name="uq_batches_group_day_batch"
        ),
    )
    op.create_index("ix_batches_sha256", "batches", ["sha256"])
    op.create_table(
        "api_cursors",
        sa.Column("group_number", sa.Integer(), primary_key=True),
        sa.Column("day", sa.String(32), primary_key=True),
        sa.Column("last_batch_number", sa.Integer(), nullable=False),
        sa.Column("exhausted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("api_cursors")
    op.drop_index("ix_batches_sha256", table_name="batches")
    op.drop_table("batches")

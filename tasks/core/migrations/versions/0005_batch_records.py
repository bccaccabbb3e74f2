"""batch_records: the record step's mark that a batch's run ended

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07

A batch the pipeline started (validated) without a ``batch_records`` row was interrupted: the
next fetch returns it again so the run finishes it. Batches validated before this revision
are taken as finished (one row each, ``summary_key`` NULL): whether their runs reached record
was not kept, and re-running every old batch at the upgrade would hold new batches back.
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "batch_records",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("batch_id", sa.Integer(), sa.ForeignKey("batches.id"), nullable=False),
        sa.Column("summary_key", sa.String(512), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_batch_records_batch_id", "batch_records", ["batch_id"], unique=True)
    op.execute(
        "INSERT INTO batch_records (batch_id, summary_key, recorded_at) "
        "SELECT batch_id, NULL, created_at FROM validations"
    )


def downgrade() -> None:
    op.drop_index("ix_batch_records_batch_id", table_name="batch_records")
    op.drop_table("batch_records")

"""deliveries, raw payloads, one row per batch in every step table, training split columns

Revision ID: 0004
Revises: 0002 (re-chain to 0003 when merged after 0003_inference_log)
Create Date: 2026-11-28

Runs forward on a ledger with data:
- ``batches`` gains ``delivery`` (1 for every existing row), ``payload_key`` and
  ``payload_bytes`` (NULL: rows stored before the raw body was kept); its unique key becomes
  (group, day, batch number, delivery), plus (group, day, batch number, sha256);
- ``api_cursors`` gains ``next_batch_number`` (last + 1 where a batch was read);
- ``deliveries``: every body the API answered, with its outcome and reason; one row per
  existing batch (outcome ``stored``, payload = its Parquet, which is all that was kept);
- ``validations``, ``drift_decisions``, ``trainings``, ``promotions``: ``batch_id`` unique.
  Duplicates left by older check-then-insert races are folded first: the oldest row stays
  (the one every step read back), references to the others move to it;
- ``trainings`` gains ``rows_train``, ``rows_holdout``, ``holdout_share``, moved out of the
  hidden ``_rows_train``, ``_rows_holdout``, ``_holdout_share`` keys of ``metrics``.
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

STEP_TABLES = ("validations", "drift_decisions", "trainings", "promotions")
#: foreign keys into a step table: (referencing table, column, referenced table)
REFERENCES = (
    ("trainings", "decision_id", "drift_decisions"),
    ("promotions", "training_id", "trainings"),
)
HIDDEN = {
    "_rows_train": "rows_train",
    "_rows_holdout": "rows_holdout",
    "_holdout_share": "holdout_share",
}


def _fold_duplicates(conn: sa.Connection, table: str) -> None:
    rows = conn.execute(sa.text(f"SELECT id, batch_id FROM {table} ORDER BY id")).all()  # noqa: S608
    keep: dict[int, int] = {}
    for row_id, batch_id in rows:
        if batch_id not in keep:
            keep[batch_id] = row_id
            continue
        for referencing, column, referenced in REFERENCES:
            if referenced == table:
                conn.execute(
                    sa.text(f"UPDATE {referencing} SET {column} = :keep WHERE {column} = :old"),  # noqa: S608 - names are constants
                    {"keep": keep[batch_id], "old": row_id},
                )
        conn.execute(sa.text(f"DELETE FROM {table} WHERE id = :id"), {"id": row_id})  # noqa: S608


def upgrade() -> None:
    conn = op.get_bind()

    with op.batch_alter_table("batches") as batch:
        batch.add_column(sa.Column("delivery", sa.Integer(), nullable=False, server_default="1"))
        batch.add_column(sa.Column("payload_key", sa.String(512), nullable=True))
        batch.add_column(sa.Column("payload_bytes", sa.BigInteger(), nullable=True))
        batch.drop_constraint("uq_batches_group_day_batch", type_="unique")
        batch.create_unique_constraint(
            "uq_batches_delivery", ["group_number", "day", "batch_number", "delivery"]
        )
        batch.create_unique_constraint(
            "uq_batches_content", ["group_number", "day", "batch_number", "sha256"]
        )

    op.add_column("api_cursors", sa.Column("next_batch_number", sa.Integer(), nullable=True))
    conn.execute(
        sa.text(
            "UPDATE api_cursors SET next_batch_number = last_batch_number + 1 "
            "WHERE last_batch_number > 0"
        )
    )

    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("group_number", sa.Integer(), nullable=False),
        sa.Column("day", sa.String(32), nullable=False),
        sa.Column("batch_number", sa.Integer(), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("batch_id", sa.Integer(), sa.ForeignKey("batches.id"), nullable=True),
        sa.Column("payload_key", sa.String(512), nullable=False),
        sa.Column("payload_sha256", sa.String(64), nullable=False),
        sa.Column("payload_bytes", sa.BigInteger(), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=True),
        sa.Column("expected_batch_number", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolution", sa.Text(), nullable=True),
    )
    op.create_index("ix_deliveries_group_day", "deliveries", ["group_number", "day"])
    conn.execute(
        sa.text(
            "INSERT INTO deliveries (group_number, day, batch_number, outcome, batch_id, "
            "payload_key, payload_sha256, payload_bytes, rows, reason, received_at) "
            "SELECT group_number, day, batch_number, 'stored', id, raw_key, sha256, bytes, rows, "
            "'recorded before 0004: only the canonical Parquet was kept', fetched_at "
            "FROM batches ORDER BY id"
        )
    )

    for table in STEP_TABLES:
        _fold_duplicates(conn, table)
        op.drop_index(f"ix_{table}_batch_id", table_name=table)
        op.create_index(f"ix_{table}_batch_id", table, ["batch_id"], unique=True)

    op.add_column("trainings", sa.Column("rows_train", sa.BigInteger(), nullable=True))
    op.add_column("trainings", sa.Column("rows_holdout", sa.BigInteger(), nullable=True))
    op.add_column("trainings", sa.Column("holdout_share", sa.Float(), nullable=True))
    trainings = sa.table(
        "trainings",
        sa.column("id", sa.Integer()),
        sa.column("metrics", sa.JSON()),
        sa.column("rows_train", sa.BigInteger()),
        sa.column("rows_holdout", sa.BigInteger()),
        sa.column("holdout_share", sa.Float()),
    )
    for row_id, metrics in conn.execute(sa.select(trainings.c.id, trainings.c.metrics)).all():
        metrics = json.loads(metrics) if isinstance(metrics, str) else dict(metrics or {})
        moved = {column: metrics.pop(key) for key, column in HIDDEN.items() if key in metrics}
        conn.execute(
            trainings.update().where(trainings.c.id == row_id).values(metrics=metrics, **moved)
        )


def downgrade() -> None:
    for table in STEP_TABLES:
        op.drop_index(f"ix_{table}_batch_id", table_name=table)
        op.create_index(f"ix_{table}_batch_id", table, ["batch_id"])
    for column in ("holdout_share", "rows_holdout", "rows_train"):
        op.drop_column("trainings", column)
    op.drop_index("ix_deliveries_group_day", table_name="deliveries")
    op.drop_table("deliveries")
    op.drop_column("api_cursors", "next_batch_number")
    with op.batch_alter_table("batches") as batch:
        batch.drop_constraint("uq_batches_content", type_="unique")
        batch.drop_constraint("uq_batches_delivery", type_="unique")
        batch.create_unique_constraint(
            "uq_batches_group_day_batch", ["group_number", "day", "batch_number"]
        )
        for column in ("payload_bytes", "payload_key", "delivery"):
            batch.drop_column(column)

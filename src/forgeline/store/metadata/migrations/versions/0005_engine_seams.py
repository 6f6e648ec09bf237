"""Engine seams: execution ownership (owner, fencing epoch, lease), code snapshots, and the step event log.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Migrations are frozen snapshots: plain SQLAlchemy types here, never forgeline's column types.
_UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Add ownership and snapshot columns to executions (unowned, epoch 0) and create step_events."""
    op.add_column("executions", sa.Column("owner", sa.String(255), nullable=True))
    op.add_column("executions", sa.Column("epoch", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("executions", sa.Column("lease_expires_at", _UTC, nullable=True))
    op.add_column("executions", sa.Column("code_snapshot", sa.String(128), nullable=True))
    op.create_table(
        "step_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("execution_id", sa.String(64), nullable=False),
        sa.Column("step_name", sa.String(255), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", _UTC, nullable=False),
        sa.ForeignKeyConstraint(["execution_id"], ["executions.id"], name="fk_step_events_executions",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_step_events"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_step_events_execution_id_id", "step_events", ["execution_id", "id"])


def downgrade() -> None:
    """Drop the event log and the ownership and snapshot columns (leases, epochs and snapshot ids are lost)."""
    op.drop_index("ix_step_events_execution_id_id", table_name="step_events")
    op.drop_table("step_events")
    # Plain DROP COLUMN (SQLite 3.35+): recreating executions would cascade-delete its step runs.
    for column in ("code_snapshot", "lease_expires_at", "epoch", "owner"):
        op.drop_column("executions", column)

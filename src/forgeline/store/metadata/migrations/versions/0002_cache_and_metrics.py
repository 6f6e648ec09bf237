"""Step cache, content index and metric time series; job pids on attempts and parents of selective runs.

Revision ID: 0002
Revises: 0001
Create Date: 2024-07-01 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Migrations are frozen snapshots: plain SQLAlchemy types here, never forgeline's column types.
_UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create the cache, content index and metric tables; add the two nullable columns."""
    op.create_table(
        "cache_entries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("cache_key", sa.String(64), nullable=False),
        sa.Column("pipeline_name", sa.String(255), nullable=False),
        sa.Column("step_name", sa.String(255), nullable=False),
        sa.Column("step_kind", sa.String(64), nullable=False),
        sa.Column("execution_id", sa.String(64), nullable=False),
        sa.Column("components", sa.JSON(), nullable=False),
        sa.Column("outputs", sa.JSON(), nullable=False),
        sa.Column("properties", sa.JSON(), nullable=False),
        sa.Column("created_at", _UTC, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_cache_entries"),
    )
    op.create_index("ix_cache_entries_cache_key_created_at", "cache_entries", ["cache_key", "created_at"])
    op.create_index(
        "ix_cache_entries_pipeline_name_step_name_created_at",
        "cache_entries",
        ["pipeline_name", "step_name", "created_at"],
    )
    op.create_table(
        "content_index",
        sa.Column("path_hash", sa.String(64), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.String(255), nullable=False),
        sa.Column("digest", sa.String(80), nullable=False),
        sa.Column("updated_at", _UTC, nullable=False),
        sa.PrimaryKeyConstraint("path_hash", name="pk_content_index"),
    )
    op.create_table(
        "metric_points",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("execution_id", sa.String(64), nullable=False),
        sa.Column("step_name", sa.String(255), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("timestamp", _UTC, nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_metric_points"),
        sa.ForeignKeyConstraint(
            ["execution_id", "step_name"],
            ["step_runs.execution_id", "step_runs.name"],
            name="fk_metric_points_step_runs",
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "ix_metric_points_execution_id_step_name_name_seq",
        "metric_points",
        ["execution_id", "step_name", "name", "seq"],
    )
    # Plain ALTER TABLE ADD/DROP COLUMN (SQLite 3.35+), never a batch copy: recreating a table that others
    # reference with ON DELETE CASCADE would, with foreign keys on, delete their rows.
    op.add_column("step_attempts", sa.Column("pid", sa.Integer(), nullable=True))
    op.add_column("executions", sa.Column("parent_execution_id", sa.String(64), nullable=True))


def downgrade() -> None:
    """Drop what upgrade added (cache entries, content index and metric points are lost)."""
    op.drop_column("executions", "parent_execution_id")
    op.drop_column("step_attempts", "pid")
    op.drop_index("ix_metric_points_execution_id_step_name_name_seq", table_name="metric_points")
    op.drop_table("metric_points")
    op.drop_table("content_index")
    op.drop_index("ix_cache_entries_pipeline_name_step_name_created_at", table_name="cache_entries")
    op.drop_index("ix_cache_entries_cache_key_created_at", table_name="cache_entries")
    op.drop_table("cache_entries")

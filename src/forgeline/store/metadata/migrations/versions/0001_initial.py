"""Initial schema: pipelines, their versions, executions, step runs and step attempts.

Revision ID: 0001
Revises:
Create Date: 2024-06-01 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Migrations are frozen snapshots: plain SQLAlchemy types here, never forgeline's column types.
_UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create every table of the first schema."""
    op.create_table(
        "pipelines",
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("created_at", _UTC, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_pipelines"),
    )
    op.create_table(
        "pipeline_versions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("pipeline_name", sa.String(255), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("created_at", _UTC, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_pipeline_versions"),
        sa.ForeignKeyConstraint(
            ["pipeline_name"], ["pipelines.name"], name="fk_pipeline_versions_pipelines", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("pipeline_name", "version", name="uq_pipeline_versions_pipeline_name_version"),
    )
    op.create_table(
        "executions",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("pipeline_name", sa.String(255), nullable=False),
        sa.Column("pipeline_version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("work_dir", sa.Text(), nullable=False),
        sa.Column("created_at", _UTC, nullable=False),
        sa.Column("started_at", _UTC, nullable=True),
        sa.Column("ended_at", _UTC, nullable=True),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.Column("orchestrator_pid", sa.Integer(), nullable=True),
        sa.Column("heartbeat_at", _UTC, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_executions"),
        sa.ForeignKeyConstraint(
            ["pipeline_name", "pipeline_version"],
            ["pipeline_versions.pipeline_name", "pipeline_versions.version"],
            name="fk_executions_pipeline_versions",
        ),
    )
    op.create_index("ix_executions_pipeline_name_created_at", "executions", ["pipeline_name", "created_at"])
    op.create_table(
        "step_runs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("execution_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", _UTC, nullable=True),
        sa.Column("ended_at", _UTC, nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.Column("outputs", sa.JSON(), nullable=False),
        sa.Column("properties", sa.JSON(), nullable=False),
        sa.Column("cache_hit", sa.Boolean(), nullable=False),
        sa.Column("cache_source", sa.Text(), nullable=True),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_step_runs"),
        sa.ForeignKeyConstraint(
            ["execution_id"], ["executions.id"], name="fk_step_runs_executions", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("execution_id", "name", name="uq_step_runs_execution_id_name"),
    )
    op.create_table(
        "step_attempts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("execution_id", sa.String(64), nullable=False),
        sa.Column("step_name", sa.String(255), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", _UTC, nullable=False),
        sa.Column("ended_at", _UTC, nullable=True),
        sa.Column("failure_kind", sa.String(64), nullable=True),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.Column("log_path", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_step_attempts"),
        sa.ForeignKeyConstraint(
            ["execution_id", "step_name"],
            ["step_runs.execution_id", "step_runs.name"],
            name="fk_step_attempts_step_runs",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint(
            "execution_id", "step_name", "attempt", name="uq_step_attempts_execution_id_step_name_attempt"
        ),
    )


def downgrade() -> None:
    """Drop every table of the first schema."""
    op.drop_table("step_attempts")
    op.drop_table("step_runs")
    op.drop_index("ix_executions_pipeline_name_created_at", table_name="executions")
    op.drop_table("executions")
    op.drop_table("pipeline_versions")
    op.drop_table("pipelines")

"""The server's state: API tokens, leases between server processes, schedules, file triggers and alarms.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Migrations are frozen snapshots: plain SQLAlchemy types here, never forgeline's column types.
_UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create the server's tables and remember the code snapshot of each pipeline version's latest save."""
    op.add_column("pipeline_versions", sa.Column("code_snapshot", sa.String(128), nullable=True))
    op.add_column("executions", sa.Column("started_by", sa.JSON(), nullable=True))
    # the API pages through every execution newest first: (created_at, id) read in index order, not sorted
    op.create_index("ix_executions_created_at_id", "executions", ["created_at", "id"])
    # no writer ever set an attempt's process id: executors find their jobs by job reference
    op.drop_column("step_attempts", "pid")
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("token_hash", sa.String(128), nullable=False),
        sa.Column("created_by", sa.String(255), nullable=True),
        sa.Column("created_at", _UTC, nullable=False),
        sa.Column("last_used_at", _UTC, nullable=True),
        sa.Column("revoked_at", _UTC, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_tokens"),
        sa.UniqueConstraint("name", name="uq_api_tokens_name"),
        sa.UniqueConstraint("token_hash", name="uq_api_tokens_token_hash"),
    )
    op.create_table(
        "server_leases",
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("owner", sa.String(255), nullable=False),
        sa.Column("expires_at", _UTC, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_server_leases"),
    )
    op.create_table(
        "server_cursors",
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", _UTC, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_server_cursors"),
    )
    op.create_table(
        "schedules",
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("pipeline_name", sa.String(255), nullable=False),
        sa.Column("pipeline_version", sa.Integer(), nullable=True),
        sa.Column("pipeline_source", sa.Text(), nullable=True),
        sa.Column("code_snapshot", sa.String(128), nullable=True),
        sa.Column("work_dir", sa.Text(), nullable=True),
        sa.Column("cron", sa.String(255), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("catchup", sa.String(8), nullable=False),
        sa.Column("overlap", sa.String(8), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("next_fire_at", _UTC, nullable=True),
        sa.Column("last_fire_at", _UTC, nullable=True),
        sa.Column("last_execution_id", sa.String(64), nullable=True),
        sa.Column("created_at", _UTC, nullable=False),
        sa.Column("updated_at", _UTC, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_schedules"),
    )
    op.create_table(
        "schedule_fires",
        sa.Column("schedule_name", sa.String(255), nullable=False),
        sa.Column("due_at", _UTC, nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("execution_id", sa.String(64), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_at", _UTC, nullable=False),
        sa.ForeignKeyConstraint(["schedule_name"], ["schedules.name"], name="fk_schedule_fires_schedules",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("schedule_name", "due_at", name="pk_schedule_fires"),
    )
    op.create_table(
        "triggers",
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("pipeline_name", sa.String(255), nullable=False),
        sa.Column("pipeline_version", sa.Integer(), nullable=True),
        sa.Column("pipeline_source", sa.Text(), nullable=True),
        sa.Column("code_snapshot", sa.String(128), nullable=True),
        sa.Column("work_dir", sa.Text(), nullable=True),
        sa.Column("watch", sa.Text(), nullable=False),
        sa.Column("pattern", sa.String(255), nullable=False),
        sa.Column("poll_seconds", sa.Float(), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("last_event_at", _UTC, nullable=True),
        sa.Column("created_at", _UTC, nullable=False),
        sa.Column("updated_at", _UTC, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_triggers"),
    )
    op.create_table(
        "trigger_objects",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("trigger_name", sa.String(255), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("version", sa.String(255), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("execution_id", sa.String(64), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("seen_at", _UTC, nullable=False),
        sa.ForeignKeyConstraint(["trigger_name"], ["triggers.name"], name="fk_trigger_objects_triggers",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_trigger_objects"),
        sa.UniqueConstraint("trigger_name", "key", "version", name="uq_trigger_objects_trigger_name_key_version"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "alarms",
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("pipeline_name", sa.String(255), nullable=True),
        sa.Column("group_name", sa.String(255), nullable=True),
        sa.Column("condition", sa.Text(), nullable=True),
        sa.Column("targets", sa.JSON(), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("created_at", _UTC, nullable=False),
        sa.Column("updated_at", _UTC, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_alarms"),
    )
    op.create_table(
        "alarm_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(255), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("dispatched", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("created_at", _UTC, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_alarm_events"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_alarm_events_dispatched_id", "alarm_events", ["dispatched", "id"])
    op.create_table(
        "alarm_deliveries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("alarm_name", sa.String(255), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_attempt_at", _UTC, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("delivered_at", _UTC, nullable=True),
        sa.Column("created_at", _UTC, nullable=False),
        sa.ForeignKeyConstraint(["event_id"], ["alarm_events.id"], name="fk_alarm_deliveries_alarm_events",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_alarm_deliveries"),
        sa.UniqueConstraint("alarm_name", "event_id", "target",
                            name="uq_alarm_deliveries_alarm_name_event_id_target"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_alarm_deliveries_status_next_attempt_at", "alarm_deliveries",
                    ["status", "next_attempt_at"])


def downgrade() -> None:
    """Drop the server's tables (tokens, schedules, triggers, alarms and their history are lost)."""
    op.drop_index("ix_alarm_deliveries_status_next_attempt_at", table_name="alarm_deliveries")
    op.drop_table("alarm_deliveries")
    op.drop_index("ix_alarm_events_dispatched_id", table_name="alarm_events")
    for table in ("alarm_events", "alarms", "trigger_objects", "triggers", "schedule_fires", "schedules",
                  "server_cursors", "server_leases", "api_tokens"):
        op.drop_table(table)
    op.drop_index("ix_executions_created_at_id", table_name="executions")
    op.drop_column("executions", "started_by")
    op.drop_column("pipeline_versions", "code_snapshot")
    op.add_column("step_attempts", sa.Column("pid", sa.Integer(), nullable=True))

"""The metadata schema as SQLAlchemy Core tables; migrations/versions must produce exactly this."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

from forgeline.store.metadata.column_types import UtcDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata_obj = MetaData(naming_convention=NAMING_CONVENTION)

pipelines = Table(
    "pipelines",
    metadata_obj,
    Column("name", String(255), primary_key=True),
    Column("created_at", UtcDateTime(), nullable=False),
)

pipeline_versions = Table(
    "pipeline_versions",
    metadata_obj,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("pipeline_name", String(255), ForeignKey("pipelines.name", ondelete="CASCADE"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("definition", JSON, nullable=False),
    Column("digest", String(64), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    # The code snapshot of this version's latest save: what a schedule, trigger or API start runs.
    Column("code_snapshot", String(128), nullable=True),
    UniqueConstraint("pipeline_name", "version"),
)

executions = Table(
    "executions",
    metadata_obj,
    Column("id", String(64), primary_key=True),
    Column("pipeline_name", String(255), nullable=False),
    Column("pipeline_version", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("parameters", JSON, nullable=False),
    Column("work_dir", Text, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("started_at", UtcDateTime(), nullable=True),
    Column("ended_at", UtcDateTime(), nullable=True),
    Column("failure_reason", Text, nullable=True),
    Column("orchestrator_pid", Integer, nullable=True),
    Column("heartbeat_at", UtcDateTime(), nullable=True),
    # No foreign key: a selective run only borrows the parent's outputs and must not pin or cascade with it.
    Column("parent_execution_id", String(64), nullable=True),
    # Ownership: one orchestrator (or launcher) at a time holds a lease; every claim counts the epoch up, and a
    # write carrying an older epoch is refused, so an owner that paused and woke up stops itself.
    Column("owner", String(255), nullable=True),
    Column("epoch", Integer, nullable=False, server_default="0"),
    Column("lease_expires_at", UtcDateTime(), nullable=True),
    Column("code_snapshot", String(128), nullable=True),
    # Who or what started it: {"kind": "cli"|"api"|"schedule"|"trigger", "name": ..., "uri": ..., "actor": ...}.
    Column("started_by", JSON, nullable=True),
    # An execution always runs a stored definition: resume and lineage read it back.
    ForeignKeyConstraint(
        ["pipeline_name", "pipeline_version"],
        ["pipeline_versions.pipeline_name", "pipeline_versions.version"],
    ),
    Index(None, "pipeline_name", "created_at"),
    Index(None, "created_at", "id"),  # pages of every execution, newest first
)

step_runs = Table(
    "step_runs",
    metadata_obj,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("execution_id", String(64), ForeignKey("executions.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(255), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("position", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("started_at", UtcDateTime(), nullable=True),
    Column("ended_at", UtcDateTime(), nullable=True),
    Column("attempts", Integer, nullable=False),
    Column("failure_reason", Text, nullable=True),
    Column("outputs", JSON, nullable=False),
    Column("properties", JSON, nullable=False),
    Column("cache_hit", Boolean, nullable=False),
    Column("cache_source", Text, nullable=True),
    Column("metrics", JSON, nullable=False),
    UniqueConstraint("execution_id", "name"),
)

step_attempts = Table(
    "step_attempts",
    metadata_obj,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("execution_id", String(64), nullable=False),
    Column("step_name", String(255), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("started_at", UtcDateTime(), nullable=False),
    Column("ended_at", UtcDateTime(), nullable=True),
    Column("failure_kind", String(64), nullable=True),
    Column("failure_reason", Text, nullable=True),
    Column("log_path", Text, nullable=True),
    ForeignKeyConstraint(
        ["execution_id", "step_name"],
        ["step_runs.execution_id", "step_runs.name"],
        ondelete="CASCADE",
    ),
    UniqueConstraint("execution_id", "step_name", "attempt"),
)

cache_entries = Table(
    "cache_entries",
    metadata_obj,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("cache_key", String(64), nullable=False),
    Column("pipeline_name", String(255), nullable=False),
    Column("step_name", String(255), nullable=False),
    Column("step_kind", String(64), nullable=False),
    # No foreign key: an entry carries its own outputs and may outlive the execution that produced it.
    Column("execution_id", String(64), nullable=False),
    Column("components", JSON, nullable=False),
    Column("outputs", JSON, nullable=False),
    Column("properties", JSON, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Index(None, "cache_key", "created_at"),
    Index(None, "pipeline_name", "step_name", "created_at"),
)

content_index = Table(
    "content_index",
    metadata_obj,
    # Keyed by sha256(path), not the path: an index on an unbounded Text column is not portable (MySQL).
    Column("path_hash", String(64), primary_key=True),
    Column("path", Text, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("version", String(255), nullable=False),
    Column("digest", String(80), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)

metric_points = Table(
    "metric_points",
    metadata_obj,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("execution_id", String(64), nullable=False),
    Column("step_name", String(255), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("name", String(255), nullable=False),
    # NULL stands for NaN, which SQLite cannot store (a diverging loss is worth keeping).
    Column("value", Float, nullable=True),
    Column("timestamp", UtcDateTime(), nullable=False),
    Column("seq", Integer, nullable=False),
    ForeignKeyConstraint(
        ["execution_id", "step_name"],
        ["step_runs.execution_id", "step_runs.name"],
        ondelete="CASCADE",
    ),
    Index(None, "execution_id", "step_name", "name", "seq"),
)

model_package_groups = Table(
    "model_package_groups",
    metadata_obj,
    Column("name", String(255), primary_key=True),
    Column("created_at", UtcDateTime(), nullable=False),
)

model_packages = Table(
    "model_packages",
    metadata_obj,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("group_name", String(255), ForeignKey("model_package_groups.name", ondelete="CASCADE"), nullable=False),
    # Numbered per group; the unique constraint turns a lost race for a number into a retry, never a duplicate.
    Column("version", Integer, nullable=False),
    Column("approval_status", String(32), nullable=False),
    Column("model_data", Text, nullable=False),
    Column("code_uri", Text, nullable=True),
    Column("entry_point", Text, nullable=True),
    Column("content_types", JSON, nullable=False),
    Column("response_types", JSON, nullable=False),
    Column("metrics", JSON, nullable=True),
    Column("description", Text, nullable=True),
    Column("lineage", JSON, nullable=False),
    # No foreign key: a package outlives the execution that registered it (lineage keeps the id).
    Column("execution_id", String(64), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    # predict_fn takes the rows of several requests at once: serving gathers concurrent requests into one call.
    Column("accepts_batches", Boolean, nullable=False, server_default=false()),
    UniqueConstraint("group_name", "version"),
    Index(None, "execution_id"),
)

model_package_events = Table(
    "model_package_events",
    metadata_obj,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("group_name", String(255), nullable=False),
    Column("version", Integer, nullable=False),
    Column("from_status", String(32), nullable=True),
    Column("to_status", String(32), nullable=False),
    Column("actor", String(255), nullable=False),
    Column("note", Text, nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    ForeignKeyConstraint(
        ["group_name", "version"],
        ["model_packages.group_name", "model_packages.version"],
        ondelete="CASCADE",
    ),
    Index(None, "group_name", "version"),
)

endpoints = Table(
    "endpoints",
    metadata_obj,
    Column("name", String(255), primary_key=True),
    # Variants (ordered model references and weights), micro-batching and capture settings, as plain JSON.
    Column("config", JSON, nullable=False),
    Column("revision", Integer, nullable=False),
    Column("status", String(32), nullable=False),
    Column("status_message", Text, nullable=True),
    # What a server serves for the current revision (e.g. the versions "@approved" resolved to).
    Column("deployed", JSON, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)

step_events = Table(
    "step_events",
    metadata_obj,
    # The id is the cursor readers resume from; AUTOINCREMENT so SQLite never hands out a deleted row's id again.
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("execution_id", String(64), ForeignKey("executions.id", ondelete="CASCADE"), nullable=False),
    Column("step_name", String(255), nullable=True),
    Column("attempt", Integer, nullable=True),
    Column("kind", String(16), nullable=False),
    Column("status", String(16), nullable=True),
    Column("payload", JSON, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Index(None, "execution_id", "id"),
    sqlite_autoincrement=True,
)

# The server's state (forgeline server): tokens, leases between server processes, schedules, triggers, alarms.

api_tokens = Table(
    "api_tokens",
    metadata_obj,
    Column("id", String(32), primary_key=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    # Only a hash is kept: the token itself is shown once, when it is created.
    Column("token_hash", String(128), nullable=False, unique=True),
    Column("created_by", String(255), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("last_used_at", UtcDateTime(), nullable=True),
    Column("revoked_at", UtcDateTime(), nullable=True),
)

server_leases = Table(
    "server_leases",
    metadata_obj,
    # One named duty (e.g. "scheduler") held by one server process at a time until expires_at. Each new holder
    # counts the epoch up; a write made under the lease carries its epoch and is refused once it is not this one.
    Column("name", String(255), primary_key=True),
    Column("owner", String(255), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
    Column("epoch", Integer, nullable=False, server_default="0"),
)

server_cursors = Table(
    "server_cursors",
    metadata_obj,
    # How far a server has read an append-only table (step_events, model_package_events), so a restart resumes.
    Column("name", String(255), primary_key=True),
    Column("position", BigInteger, nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)

schedules = Table(
    "schedules",
    metadata_obj,
    Column("name", String(255), primary_key=True),
    Column("pipeline_name", String(255), nullable=False),
    Column("pipeline_version", Integer, nullable=True),
    Column("pipeline_source", Text, nullable=True),
    Column("code_snapshot", String(128), nullable=True),
    # The folder the schedule or trigger was created from: relative data paths resolve there, as in `run`.
    Column("work_dir", Text, nullable=True),
    Column("cron", String(255), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("parameters", JSON, nullable=False),
    Column("catchup", String(8), nullable=False),
    Column("overlap", String(8), nullable=False),
    Column("paused", Boolean, nullable=False, server_default=false()),
    Column("next_fire_at", UtcDateTime(), nullable=True),
    Column("last_fire_at", UtcDateTime(), nullable=True),
    Column("last_execution_id", String(64), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)

schedule_fires = Table(
    "schedule_fires",
    metadata_obj,
    # The primary key makes a due time fire once, whichever server process inserts it first.
    Column("schedule_name", String(255), ForeignKey("schedules.name", ondelete="CASCADE"), primary_key=True),
    Column("due_at", UtcDateTime(), primary_key=True),
    Column("outcome", String(16), nullable=False),
    Column("execution_id", String(64), nullable=True),
    Column("reason", Text, nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
)

triggers = Table(
    "triggers",
    metadata_obj,
    Column("name", String(255), primary_key=True),
    Column("pipeline_name", String(255), nullable=False),
    Column("pipeline_version", Integer, nullable=True),
    Column("pipeline_source", Text, nullable=True),
    Column("code_snapshot", String(128), nullable=True),
    # The folder the schedule or trigger was created from: relative data paths resolve there, as in `run`.
    Column("work_dir", Text, nullable=True),
    Column("watch", Text, nullable=False),
    Column("pattern", String(255), nullable=False),
    Column("poll_seconds", Float, nullable=False),
    Column("parameters", JSON, nullable=False),
    Column("paused", Boolean, nullable=False, server_default=false()),
    Column("last_event_at", UtcDateTime(), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)

trigger_objects = Table(
    "trigger_objects",
    metadata_obj,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("trigger_name", String(255), ForeignKey("triggers.name", ondelete="CASCADE"), nullable=False),
    Column("key", Text, nullable=False),
    # ETag for S3, mtime and size for a local file: a rewritten object is a new arrival, a re-listed one is not.
    Column("version", String(255), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("execution_id", String(64), nullable=True),
    Column("reason", Text, nullable=True),
    Column("seen_at", UtcDateTime(), nullable=False),
    UniqueConstraint("trigger_name", "key", "version"),
    sqlite_autoincrement=True,
)

alarms = Table(
    "alarms",
    metadata_obj,
    Column("name", String(255), primary_key=True),
    Column("events", JSON, nullable=False),
    Column("pipeline_name", String(255), nullable=True),
    Column("group_name", String(255), nullable=True),
    Column("condition", Text, nullable=True),
    Column("targets", JSON, nullable=False),
    Column("paused", Boolean, nullable=False, server_default=false()),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)

alarm_events = Table(
    "alarm_events",
    metadata_obj,
    # An outbox: events are written first, matched to alarms and turned into deliveries after, so none is lost.
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False),
    Column("subject", String(255), nullable=True),
    Column("payload", JSON, nullable=False),
    Column("dispatched", Boolean, nullable=False, server_default=false()),
    Column("created_at", UtcDateTime(), nullable=False),
    Index(None, "dispatched", "id"),
    sqlite_autoincrement=True,
)

alarm_deliveries = Table(
    "alarm_deliveries",
    metadata_obj,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # No foreign key to alarms: the history outlives a deleted alarm.
    Column("alarm_name", String(255), nullable=False),
    Column("event_id", Integer, ForeignKey("alarm_events.id", ondelete="CASCADE"), nullable=False),
    Column("target", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", UtcDateTime(), nullable=True),
    Column("last_error", Text, nullable=True),
    Column("delivered_at", UtcDateTime(), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    UniqueConstraint("alarm_name", "event_id", "target"),
    Index(None, "status", "next_attempt_at"),
    sqlite_autoincrement=True,
)

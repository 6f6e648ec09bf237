"""Model registry: package groups, versioned model packages and their approval-status events.

Revision ID: 0003
Revises: 0002
Create Date: 2024-08-01 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Migrations are frozen snapshots: plain SQLAlchemy types here, never forgeline's column types.
_UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create the model package groups, packages and events tables."""
    op.create_table(
        "model_package_groups",
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("created_at", _UTC, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_model_package_groups"),
    )
    op.create_table(
        "model_packages",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("group_name", sa.String(255), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("approval_status", sa.String(32), nullable=False),
        sa.Column("model_data", sa.Text(), nullable=False),
        sa.Column("code_uri", sa.Text(), nullable=True),
        sa.Column("entry_point", sa.Text(), nullable=True),
        sa.Column("content_types", sa.JSON(), nullable=False),
        sa.Column("response_types", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("lineage", sa.JSON(), nullable=False),
        sa.Column("execution_id", sa.String(64), nullable=True),
        sa.Column("created_at", _UTC, nullable=False),
        sa.Column("updated_at", _UTC, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_model_packages"),
        sa.ForeignKeyConstraint(
            ["group_name"],
            ["model_package_groups.name"],
            name="fk_model_packages_model_package_groups",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("group_name", "version", name="uq_model_packages_group_name_version"),
    )
    op.create_index("ix_model_packages_execution_id", "model_packages", ["execution_id"])
    op.create_table(
        "model_package_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("group_name", sa.String(255), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("from_status", sa.String(32), nullable=True),
        sa.Column("to_status", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", _UTC, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_model_package_events"),
        sa.ForeignKeyConstraint(
            ["group_name", "version"],
            ["model_packages.group_name", "model_packages.version"],
            name="fk_model_package_events_model_packages",
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "ix_model_package_events_group_name_version", "model_package_events", ["group_name", "version"]
    )


def downgrade() -> None:
    """Drop the registry tables (every registered package and its history is lost)."""
    op.drop_index("ix_model_package_events_group_name_version", table_name="model_package_events")
    op.drop_table("model_package_events")
    op.drop_index("ix_model_packages_execution_id", table_name="model_packages")
    op.drop_table("model_packages")
    op.drop_table("model_package_groups")

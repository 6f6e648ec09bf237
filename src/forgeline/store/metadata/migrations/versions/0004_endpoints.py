"""Real-time endpoints: their configurations and status, and the micro-batching flag of model packages.

Revision ID: 0004
Revises: 0003
Create Date: 2024-09-01 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Migrations are frozen snapshots: plain SQLAlchemy types here, never forgeline's column types.
_UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create the endpoints table and add model_packages.accepts_batches (false for existing packages)."""
    op.create_table(
        "endpoints",
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("status_message", sa.Text(), nullable=True),
        sa.Column("deployed", sa.JSON(), nullable=False),
        sa.Column("created_at", _UTC, nullable=False),
        sa.Column("updated_at", _UTC, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_endpoints"),
    )
    op.add_column("model_packages",
                  sa.Column("accepts_batches", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    """Drop the endpoints table and the micro-batching flag (every endpoint configuration is lost)."""
    # A plain DROP COLUMN (SQLite 3.35+): recreating the table would cascade-delete its approval events.
    op.drop_column("model_packages", "accepts_batches")
    op.drop_table("endpoints")

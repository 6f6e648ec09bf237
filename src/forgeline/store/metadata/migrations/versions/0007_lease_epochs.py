"""Duty leases count an epoch: each new holder gets the next, and its writes are refused once another holds it.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 07:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add server_leases.epoch."""
    op.add_column("server_leases", sa.Column("epoch", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    """Drop server_leases.epoch."""
    op.drop_column("server_leases", "epoch")

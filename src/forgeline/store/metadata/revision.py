"""The metadata schema's revision this forgeline writes and reads: the head of its Alembic migrations.

Kept apart from migrate.py (which imports SQLAlchemy and Alembic) so that a reader can check a database's
revision without them; a test checks it against the migration scripts.
"""

from __future__ import annotations

HEAD_REVISION = "0007"
"""The newest migration's revision id; a new migration (see migrate.py) updates it."""

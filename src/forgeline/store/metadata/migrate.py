"""Bring a metadata database to the schema head: a one-query check normally, Alembic only when behind.

To add a revision, edit tables.py, then generate one against a scratch database::

    from alembic import command
    from forgeline.store.metadata.migrate import alembic_config
    command.revision(alembic_config(url="sqlite:///scratch.db"), autogenerate=True, message="...")

and update HEAD_REVISION (a test checks it against the scripts).
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.exc import DBAPIError

from forgeline.errors import StoreError
from forgeline.store.metadata.connection import read_only

if TYPE_CHECKING:
    from alembic.config import Config

HEAD_REVISION = "0004"
MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_UPGRADE_ATTEMPTS = 5
# Any constant works: it only has to be the same in every forgeline process migrating one database.
_POSTGRES_MIGRATION_LOCK_KEY = 0x666F726765


def alembic_config(*, connection: Connection | None = None, url: str | None = None) -> Config:
    """An Alembic Config for forgeline's migrations, bound to a live connection or a database URL."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def current_revision(engine: Engine) -> str | None:
    """The database's Alembic revision, or None for a database forgeline has never touched."""
    try:
        with read_only(engine).connect() as connection:
            return _read_revision(connection)
    except DBAPIError:
        # No alembic_version table yet (the error type differs per driver, so no finer check).
        return None


def ensure_schema(engine: Engine) -> None:
    """Upgrade the database to HEAD_REVISION, safely when several processes start on a new database at once."""
    if current_revision(engine) == HEAD_REVISION:
        return
    for attempt in range(1, _UPGRADE_ATTEMPTS + 1):
        try:
            _upgrade_under_lock(engine)
            return
        except DBAPIError as error:
            # Another process won a race we could not serialise (e.g. a DDL conflict): look again.
            if current_revision(engine) == HEAD_REVISION:
                return
            if attempt == _UPGRADE_ATTEMPTS:
                raise StoreError(
                    f"could not migrate the metadata database {_display(engine)} to schema {HEAD_REVISION}: "
                    f"{error.orig}"
                ) from error
            time.sleep(random.uniform(0.05, 0.2) * attempt)


def _upgrade_under_lock(engine: Engine) -> None:
    from alembic import command
    from alembic.util.exc import CommandError

    # SQLite: the transaction begins IMMEDIATE, i.e. holding the write lock, so upgraders queue up and
    # each one re-reads the revision after the previous one committed.
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _POSTGRES_MIGRATION_LOCK_KEY})
        if inspect(connection).has_table("alembic_version") and _read_revision(connection) == HEAD_REVISION:
            return
        try:
            command.upgrade(alembic_config(connection=connection), "head")
        except CommandError as error:
            raise StoreError(
                f"the metadata database {_display(engine)} has schema revision {_read_revision(connection)!r}, "
                f"which this forgeline does not know (newest known: {HEAD_REVISION}); upgrade forgeline "
                "or point FORGELINE_DATABASE_URL at another database"
            ) from error


def _display(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def _read_revision(connection: Connection) -> str | None:
    row = connection.execute(text("SELECT version_num FROM alembic_version")).first()
    return None if row is None else str(row[0])

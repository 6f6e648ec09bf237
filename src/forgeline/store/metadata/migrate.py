"""Bring a metadata database to the schema head: a one-query check normally, Alembic only when behind.

To add a revision, edit tables.py, then generate one against a scratch database::

    from alembic import command
    from forgeline.store.metadata.migrate import alembic_config
    command.revision(alembic_config(url="sqlite:///scratch.db"), autogenerate=True, message="...")

and update HEAD_REVISION in revision.py (a test checks it against the scripts).
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.exc import DBAPIError

from forgeline import __version__
from forgeline.errors import StoreError
from forgeline.store.metadata.connection import read_only
from forgeline.store.metadata.revision import HEAD_REVISION
from forgeline.store.metadata.sqlite_file import display_path, is_read_only

if TYPE_CHECKING:
    from alembic.config import Config

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
    with read_only(engine).connect() as connection:
        try:
            return _read_revision(connection)  # one query: the version table is there on every store but a new one
        except DBAPIError:
            connection.rollback()  # PostgreSQL refuses any statement after a failed one until the rollback
        if not inspect(connection).has_table("alembic_version"):
            return None
        return _read_revision(connection)


def ensure_schema(engine: Engine) -> None:
    """Upgrade the database to HEAD_REVISION, safely when several processes start on a new database at once.

    Refused with one StoreError: a schema newer than this forgeline knows, another application's database,
    and a read-only database that would need migrating.
    """
    revision = current_revision(engine)
    if revision == HEAD_REVISION:
        return
    check_migratable(engine, revision)
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


def check_migratable(engine: Engine, revision: str | None) -> None:
    """Refuse, before taking the migration lock, a database written by a newer forgeline or one that is read-only."""
    from alembic.script import ScriptDirectory
    from alembic.util.exc import CommandError

    name = display_path(engine.url)
    if revision is not None:
        try:
            known = ScriptDirectory.from_config(alembic_config()).get_revision(revision) is not None
        except CommandError:
            known = False
        if not known:
            raise StoreError(
                f"the metadata database {name} has schema revision {revision!r}, which this forgeline "
                f"{__version__} does not know (newest known: {HEAD_REVISION}): it was written by a newer forgeline; "
                "upgrade forgeline, or point FORGELINE_HOME or FORGELINE_DATABASE_URL at another store"
            )
    if is_read_only(engine.url):
        raise StoreError(
            f"the metadata database {name} is read-only and its schema (revision {revision or 'none'}) must be "
            f"migrated to {HEAD_REVISION} before this forgeline {__version__} can use it; run any forgeline "
            "command once where the store is writable"
        )


def _upgrade_under_lock(engine: Engine) -> None:
    from alembic import command
    from alembic.util.exc import CommandError

    # SQLite: the transaction begins IMMEDIATE, i.e. holding the write lock, so upgraders queue up and
    # each one re-reads the revision after the previous one committed.
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _POSTGRES_MIGRATION_LOCK_KEY})
        versioned = inspect(connection).has_table("alembic_version") and _read_revision(connection) is not None
        if versioned and _read_revision(connection) == HEAD_REVISION:
            return
        if not versioned:
            _refuse_foreign_tables(connection, _display(engine))
        try:
            command.upgrade(alembic_config(connection=connection), "head")
        except CommandError as error:
            raise StoreError(
                f"the metadata database {_display(engine)} has schema revision {_read_revision(connection)!r}, "
                f"which this forgeline does not know (newest known: {HEAD_REVISION}); upgrade forgeline "
                "or point FORGELINE_DATABASE_URL at another database"
            ) from error


def _refuse_foreign_tables(connection: Connection, name: str) -> None:
    """Refuse to add forgeline's schema to a database that has tables but no forgeline schema version."""
    tables = sorted(set(inspect(connection).get_table_names()) - {"alembic_version"})
    if tables:
        raise StoreError(
            f"the database {name} is not a forgeline store (it has tables {', '.join(tables[:5])}"
            f"{', …' if len(tables) > 5 else ''} but no forgeline schema version); point FORGELINE_HOME or "
            "FORGELINE_DATABASE_URL at a forgeline store or an empty database"
        )


def _display(engine: Engine) -> str:
    return display_path(engine.url)


def _read_revision(connection: Connection) -> str | None:
    row = connection.execute(text("SELECT version_num FROM alembic_version")).first()
    return None if row is None else str(row[0])

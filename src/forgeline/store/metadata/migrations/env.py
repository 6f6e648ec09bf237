"""Alembic environment: runs on a connection handed in by forgeline, or on a URL for `alembic revision`.

Alembic executes this file as a script (never imported by forgeline), hence the module-level call below.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from forgeline.store.metadata.connection import create_metadata_engine
from forgeline.store.metadata.tables import metadata_obj


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata_obj,
        # SQLite DDL is transactional once pysqlite stops managing transactions, so a half-applied
        # migration never survives a crash and concurrent upgraders serialise on the write lock.
        transactional_ddl=True,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("set sqlalchemy.url (alembic -x or Config.set_main_option) to run migrations")
    engine = create_metadata_engine(url)
    try:
        with engine.connect() as fresh_connection:
            _run(fresh_connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise RuntimeError("forgeline migrations run online only; offline SQL generation is not supported")
_run_online()

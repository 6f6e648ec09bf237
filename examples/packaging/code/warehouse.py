"""The warehouse behind a SQLAlchemy URL: DuckDB (`duckdb:////abs/path.duckdb`) or PostgreSQL
(`postgresql+psycopg://user@host/db`). Its tables, and fast portable bulk inserts and upserts.

A plain file path is accepted wherever a URL is and means a DuckDB file. Jobs run in their own folders, so a
relative path only works where it is resolved: in the generator and the pipeline files, not inside a job.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as postgres_insert

LOCK_WAIT_SECONDS = 120.0
"""How long to wait for a DuckDB file another process holds (one writer, or any number of readers, at a time)."""

ROWS_PER_STATEMENT = 1000
"""Rows sent in one multi-row INSERT: row-by-row executemany is minutes for DuckDB, this is about a second."""

metadata = sa.MetaData()

products = sa.Table(
    "products", metadata,
    sa.Column("product_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("sku", sa.String(32), nullable=False),
    sa.Column("category", sa.String(32), nullable=False),
    sa.Column("length_cm", sa.Float, nullable=False),
    sa.Column("width_cm", sa.Float, nullable=False),
    sa.Column("height_cm", sa.Float, nullable=False),
    sa.Column("weight_kg", sa.Float, nullable=False),
    sa.Column("fragility", sa.Float, nullable=False),  # 0 sturdy .. 1 breaks if you look at it
    sa.Column("liquid", sa.Boolean, nullable=False),
    sa.Column("added_on", sa.Date, nullable=False),
)

shipping_feedback = sa.Table(
    "shipping_feedback", metadata,
    sa.Column("product_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("package_type", sa.String(16), primary_key=True),
    sa.Column("week", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("shipped_ok", sa.Boolean, nullable=False),  # the customer said it arrived in good shape
    sa.Column("received_on", sa.Date, nullable=False),
)

package_predictions = sa.Table(
    "package_predictions", metadata,
    sa.Column("product_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("package_type", sa.String(16), primary_key=True),
    sa.Column("prediction_date", sa.Date, primary_key=True),
    sa.Column("mode", sa.String(16), primary_key=True),
    sa.Column("probability_ok", sa.Float, nullable=False),
    sa.Column("ships_ok", sa.Boolean, nullable=False),
    sa.Column("model_package", sa.String(128), nullable=False),  # "<group>/<version>" in the model registry
    sa.Column("model_version", sa.Integer, nullable=False),
    sa.Column("execution_id", sa.String(64), nullable=False),
    sa.Column("loaded_at", sa.DateTime, nullable=False),
)


def warehouse_url(location: str) -> str:
    """A SQLAlchemy URL for ``location``: URLs as they are, a file path as an absolute ``duckdb:///`` URL."""
    if "://" in location:
        return location
    return "duckdb:///" + os.path.abspath(os.path.expanduser(location))


def connect(location: str, read_only: bool = False) -> sa.Engine:
    """An engine for the warehouse; DuckDB read-only connections let several readers share one file."""
    url = warehouse_url(location)
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() != "duckdb":
        return sa.create_engine(url)
    path = parsed.database or ""
    if path and path != ":memory:" and not os.path.isabs(path):
        raise SystemExit(f"the DuckDB warehouse {url} is a relative path, which a job (running in its own folder) "
                         "cannot find: give an absolute path, e.g. duckdb:////data/warehouse.duckdb")
    if read_only and path and not os.path.exists(path):
        raise SystemExit(f"the DuckDB warehouse {path} does not exist: fill it with examples/packaging/generate.py")
    # One connection, no pool: DuckDB locks the file per process, and a pool would keep it open.
    return sa.create_engine(url, poolclass=sa.pool.NullPool, connect_args={"read_only": read_only})


def create_tables(engine: sa.Engine | sa.Connection) -> None:
    """Create the warehouse tables that do not exist yet."""
    metadata.create_all(engine)


def _chunks(rows: Sequence[Mapping[str, Any]]) -> Iterator[Sequence[Mapping[str, Any]]]:
    for start in range(0, len(rows), ROWS_PER_STATEMENT):
        yield rows[start:start + ROWS_PER_STATEMENT]


def insert_rows(connection: sa.Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert ``rows`` (dicts keyed by column) with multi-row INSERT statements."""
    for chunk in _chunks(rows):
        connection.execute(table.insert().values(list(chunk)))


def upsert_rows(connection: sa.Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert ``rows``, replacing the non-key columns of rows whose primary key already exists.

    ``INSERT ... ON CONFLICT (key) DO UPDATE`` is the same statement in PostgreSQL and DuckDB (whose SQLAlchemy
    dialect derives from PostgreSQL's), so one code path serves both.
    """
    keys = [column.name for column in table.primary_key.columns]
    for chunk in _chunks(rows):
        statement = postgres_insert(table).values(list(chunk))
        statement = statement.on_conflict_do_update(
            index_elements=keys,
            set_={column.name: statement.excluded[column.name] for column in table.columns if column.name not in keys},
        )
        connection.execute(statement)


def _open(engine: sa.Engine, wait_seconds: float) -> sa.Connection:
    """A connection, waiting while another process holds the DuckDB file's lock."""
    deadline = time.monotonic() + wait_seconds
    delay = 0.1
    while True:
        try:
            return engine.connect()
        except sa.exc.OperationalError as exc:
            if "Could not set lock" not in str(exc) or time.monotonic() + delay > deadline:
                raise
            print(f"the warehouse is in use by another process; retrying in {delay:.1f} s", flush=True)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


@contextmanager
def transaction(location: str, read_only: bool = False,
                wait_seconds: float = LOCK_WAIT_SECONDS) -> Iterator[sa.Connection]:
    """A connection in a transaction, committed on success; the engine is disposed (the file released) after.

    A DuckDB file is locked by the process that has it open for writing (and against writers while readers
    have it): a training run and an inference run that meet there take turns instead of failing.
    """
    engine = connect(location, read_only=read_only)
    try:
        with _open(engine, wait_seconds) as connection, connection.begin():
            yield connection
    finally:
        engine.dispose()

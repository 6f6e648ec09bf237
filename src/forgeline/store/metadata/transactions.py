"""Transactions that outlast short store faults and notice a SQLite file that was deleted or replaced.

A write that meets a transient fault (SQLite's lock held by another process, a PostgreSQL connection reset or
serialisation failure) is tried again with growing pauses until FORGELINE_STORE_RETRY_SECONDS have passed,
then StoreUnavailableError says what happened. A SQLite file is remembered by device and inode when the store
opens it; before every transaction and after every failure the path is checked again, so a database deleted or
replaced under a running process raises StoreReplacedError instead of writing into a file nobody reads or
silently starting a new, empty one.
"""

from __future__ import annotations

import os
import random
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError, OperationalError

from forgeline.errors import StoreReplacedError, StoreUnavailableError
from forgeline.store.metadata.connection import read_only
from forgeline.store.metadata.sqlite_file import display_path, sqlite_path

_Result = TypeVar("_Result")
_FIRST_PAUSE_SECONDS = 0.05
_LONGEST_PAUSE_SECONDS = 2.0
_SQLITE_TRANSIENT = ("database is locked", "database table is locked", "database schema is locked")


class Transactions:
    """Runs units of work in write or read transactions of one engine, retrying transient faults."""

    def __init__(self, engine: Engine, retry_seconds: float) -> None:
        """Remember the SQLite file as it is now (if the engine has one)."""
        self._engine = engine
        self._reader = read_only(engine)
        self.retry_seconds = retry_seconds
        self._path = sqlite_path(engine.url)
        self._identity = _identity(self._path) if self._path is not None else None
        self._fence: ContextVar[Callable[[Connection], None] | None] = ContextVar(f"fence-{id(self)}", default=None)

    def write(self, work: Callable[[Connection], _Result]) -> _Result:
        """Run ``work`` in a write transaction (SQLite: holding the write lock), retrying transient faults.

        Inside ``fenced(check)``, ``check`` runs first in the same transaction and may refuse the write.
        """
        check = self._fence.get()
        if check is None:
            return self._run(self._engine, work)

        def checked(connection: Connection) -> _Result:
            check(connection)
            return work(connection)

        return self._run(self._engine, checked)

    @contextmanager
    def fenced(self, check: Callable[[Connection], None]) -> Iterator[None]:
        """Every write this thread (context) makes meanwhile runs ``check`` first, in its transaction."""
        token = self._fence.set(check)
        try:
            yield
        finally:
            self._fence.reset(token)

    def read(self, work: Callable[[Connection], _Result]) -> _Result:
        """Run ``work`` in a read transaction, retrying transient faults."""
        return self._run(self._reader, work)

    def check_file(self) -> None:
        """StoreReplacedError when the SQLite file this store opened was deleted or replaced since."""
        if self._path is None or self._identity is None:
            return
        now = _identity(self._path)
        if now == self._identity:
            return
        what = "deleted" if now is None else "replaced by another file"
        raise StoreReplacedError(
            f"the metadata database {self._path} was {what} while this process was using it; nothing more is "
            "written, so no record goes into a file nobody reads: restore the file (or point FORGELINE_HOME "
            "at the store you meant) and resume the execution with `forgeline executions resume`"
        )

    def _run(self, engine: Engine, work: Callable[[Connection], _Result]) -> _Result:
        started = time.monotonic()
        pause = _FIRST_PAUSE_SECONDS
        while True:
            self.check_file()
            try:
                with engine.begin() as connection:
                    return work(connection)
            except DBAPIError as error:
                self.check_file()
                if not is_transient(error):
                    raise
                left = started + self.retry_seconds - time.monotonic()
                if left <= 0:
                    raise StoreUnavailableError(
                        f"the metadata database {display_path(engine.url)} stayed unavailable for "
                        f"{self.retry_seconds:g} s ({error.orig}); find what holds it (a long transaction, a "
                        "stopped server), or give it longer with FORGELINE_STORE_RETRY_SECONDS"
                    ) from error
                pause_for(min(left, pause * random.uniform(0.5, 1.0)))
                pause = min(pause * 2, _LONGEST_PAUSE_SECONDS)


def is_transient(error: DBAPIError) -> bool:
    """Whether trying again may succeed: a lock, a lost connection or a serialisation failure, not a bad query."""
    if error.connection_invalidated:
        return True
    if not isinstance(error, OperationalError):
        return False
    if isinstance(error.orig, sqlite3.Error):
        return any(fragment in str(error.orig) for fragment in _SQLITE_TRANSIENT)
    return True


def pause_for(seconds: float) -> None:
    """Wait between tries (a module function, so a test can see the retry happen)."""
    time.sleep(max(seconds, 0.0))


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return stat.st_dev, stat.st_ino

"""Metadata stores a warm launcher keeps opened for its children (see ``engine/warm_launcher.py``).

Opening a SQLite store costs a start more than anything else in the launcher's child: the engine made, the file
checked, the driver's dialect set up on a first connection, the schema found current. The launcher does it once
per database, between requests, and closes the store's connections so that forking stays safe; each child that
starts an execution on that database takes the store as it is (reconnecting on first use) once it has checked
that the file is still the one opened (its device and inode) and its schema still current. A child that opened its
own store asks the launcher, through a pipe, to keep one for the next start on that database. (A new file that
got the inode of a deleted one passes as the same: harmless, since a connection opens the path and the schema is
checked again.)

Only SQLite files that exist, named by an absolute path, are kept: a relative path would be resolved against the
launcher's folder, and creating a database is left to the requester's umask.
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import make_url

from forgeline.store.metadata.sqlite_file import sqlite_file

if TYPE_CHECKING:
    from forgeline.config import Settings
    from forgeline.store.metadata.sql_store import SqlMetadataStore

KEPT_STORES_LIMIT = 4
"""How many databases' stores a launcher keeps (the least recently used one goes first)."""

StoreKey = tuple[str, float]
"""A kept store's database URL and retry seconds (FORGELINE_STORE_RETRY_SECONDS)."""


class KeptStores:
    """The launcher's opened stores by database, and the pipe on which its children ask for more."""

    def __init__(self, limit: int = KEPT_STORES_LIMIT) -> None:
        self._limit = limit
        self._stores: OrderedDict[StoreKey, SqlMetadataStore] = OrderedDict()
        self._requests: int | None = None  # the launcher reads children's requests here
        self._ask: int | None = None  # where a child writes its request
        self._pending = b""  # the start of a request not read whole yet

    def listen(self) -> int:
        """In the launcher: open the pipe children ask on; its read end (non-blocking)."""
        self._requests, self._ask = os.pipe()
        os.set_blocking(self._requests, False)
        return self._requests

    def asked(self) -> list[Callable[[], None]]:
        """In the launcher: read what children asked for; the work of keeping each store (see ``keep``)."""
        assert self._requests is not None
        try:
            self._pending += os.read(self._requests, 1 << 16)
        except BlockingIOError:
            return []
        *lines, self._pending = self._pending.split(b"\n")
        keys: set[StoreKey] = set()
        for line in lines:
            try:
                url, seconds = json.loads(line)
                keys.add((str(url), float(seconds)))
            except (ValueError, TypeError):
                continue  # not a request any child of this launcher writes
        return [partial(self.keep, key) for key in sorted(keys)]

    def keep(self, key: StoreKey) -> None:
        """In the launcher: open the store of ``key`` and close its connections; nothing when it cannot be kept.

        A database file still open afterwards would make every later fork unsafe: the launcher then stops
        (SystemExit), and the next start brings up a new one.
        """
        from forgeline.engine.launch import database_files_closed
        from forgeline.store.metadata.sql_store import SqlMetadataStore

        url, retry_seconds = key
        held = self._stores.pop(key, None)
        if held is not None and held.on_its_file():  # kept after the asking child was forked: still good
            self._stores[key] = held
            return
        if not keepable(url):
            return
        store: SqlMetadataStore | None = None
        try:
            store = SqlMetadataStore(url, create=False, retry_seconds=retry_seconds)
            store.close()
        except Exception:  # noqa: BLE001 - whatever keeps it from opening, the child that needs it meets and reports
            store = None
        if not database_files_closed(url):
            raise SystemExit(f"the metadata database {url} stayed open after its store was closed")
        if store is None:
            return
        self._stores[key] = store
        while len(self._stores) > self._limit:
            self._stores.popitem(last=False)

    def take(self, settings: Settings) -> SqlMetadataStore | None:
        """In a child: the kept store of ``settings``' database, if still usable (see ``SqlMetadataStore.reusable``);
        else None, having asked the launcher to keep one for the next start. Either way the pipe is closed here."""
        key = (settings.database_url, settings.store_retry_seconds)
        store = self._stores.get(key)
        try:
            if store is not None and store.reusable():
                return store
            if self._ask is not None and keepable(settings.database_url):
                os.write(self._ask, json.dumps(list(key)).encode() + b"\n")
            return None
        finally:
            self.close_in_child()

    def close_in_child(self) -> None:
        """In a child: close this process's ends of the pipe (what it forks keeps nothing of the launcher's)."""
        for fd in (self._requests, self._ask):
            if fd is not None:
                os.close(fd)
        self._requests = self._ask = None


def keepable(database_url: str) -> bool:
    """Whether a launcher may keep the store of ``database_url``: an existing SQLite file named by an absolute path."""
    try:
        url = make_url(database_url)
    except Exception:  # noqa: BLE001 - any malformed URL: the child opening it reports it
        return False
    path = sqlite_file(url)
    return path is not None and Path(url.database or "").expanduser().is_absolute() and path.is_file()

"""What every CLI command needs: settings read once from the environment, and the stores.

The runtime (the engine, the stores and SQLAlchemy behind them) is imported when a command first asks for it,
so a command that answers without it (`executions list` on SQLite) never imports it.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING

from forgeline.cli.output import make_console
from forgeline.config import HOME_FOLDER, ServerConnection, Settings
from forgeline.errors import StoreNotFoundError

if TYPE_CHECKING:
    from forgeline.cli.remote import RemoteClient
    from forgeline.engine.runtime import Runtime
    from forgeline.store.metadata.records import ExecutionRecord, ExecutionStatus
    from forgeline.store.metadata.sql_store import SqlMetadataStore


class CliContext:
    """Settings and lazily opened stores for one CLI invocation."""

    def __init__(self) -> None:
        self.settings = Settings.from_env()
        self.console = make_console()

    @cached_property
    def runtime(self) -> Runtime:
        """Settings, the metadata store, the artifact store and the executor, built once for the command.

        The metadata store is never created here (commands that start executions create it).
        """
        from forgeline.engine.runtime import Runtime

        try:
            return Runtime.build(self.settings, create=False)
        except StoreNotFoundError as exc:
            start = self.settings.searched_from
            if start is None:
                raise StoreNotFoundError(f"{exc}: nothing has run with this store yet "
                                         "(`forgeline run <pipeline.py>` creates it)") from None
            raise StoreNotFoundError(
                f"no forgeline store found: looked for a {HOME_FOLDER} folder in {start} and every folder above "
                f"it; `forgeline run <pipeline.py>` creates {start / HOME_FOLDER}, or set FORGELINE_HOME"
            ) from None

    @cached_property
    def remote(self) -> RemoteClient | None:
        """The server FORGELINE_URL names, which the command then talks to instead of the store; None if unset."""
        connection = ServerConnection.from_env()
        if connection is None:
            return None
        from forgeline.cli.remote import RemoteClient  # httpx is imported only by commands that talk to a server

        return RemoteClient(connection)

    @property
    def store(self) -> SqlMetadataStore:
        """The metadata store (see ``runtime``)."""
        from forgeline.store.metadata.sql_store import SqlMetadataStore

        store = self.runtime.store
        assert isinstance(store, SqlMetadataStore)
        return store

    def list_executions(self, pipeline_name: str | None, *, limit: int, statuses: Collection[ExecutionStatus] | None,
                        since: datetime | None) -> list[ExecutionRecord]:
        """The store's ``list_executions``, read without SQLAlchemy from a SQLite store at the current schema."""
        from forgeline.store.metadata.sqlite_execution_list import list_sqlite_executions

        if "runtime" not in self.__dict__:  # no store open yet: a SQLite file may be read without one
            records = list_sqlite_executions(self.settings.database_url, pipeline_name, limit, statuses=statuses,
                                             since=since)
            if records is not None:
                return records
        return self.store.list_executions(pipeline_name, limit=limit, statuses=statuses, since=since)

"""What every CLI command needs: settings read once from the environment, and the stores."""

from __future__ import annotations

from functools import cached_property

from forgeline.cli.output import make_console
from forgeline.config import Settings
from forgeline.store.metadata.sql_store import SqlMetadataStore


class CliContext:
    """Settings and lazily opened stores for one CLI invocation."""

    def __init__(self) -> None:
        self.settings = Settings.from_env()
        self.console = make_console()

    @cached_property
    def store(self) -> SqlMetadataStore:
        """The metadata store."""
        return SqlMetadataStore(self.settings.database_url)

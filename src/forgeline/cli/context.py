"""What every CLI command needs: settings read once from the environment, and the stores."""

from __future__ import annotations

import sys
from functools import cached_property

from rich.console import Console

from forgeline.config import Settings
from forgeline.store.metadata.sql_store import SqlMetadataStore


class CliContext:
    """Settings and lazily opened stores for one CLI invocation."""

    def __init__(self) -> None:
        self.settings = Settings.from_env()
        # wide enough for ids and reasons when the output goes to a file or a pipe
        self.console = Console(width=None if sys.stdout.isatty() else 160)

    @cached_property
    def store(self) -> SqlMetadataStore:
        """The metadata store."""
        return SqlMetadataStore(self.settings.database_url)

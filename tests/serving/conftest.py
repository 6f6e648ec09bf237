"""Fixtures of the serving tests: the test's metadata store, a folder for tiny models, servers stopped after."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from forgeline.store.metadata.sql_store import SqlMetadataStore
from serving.server_process import ServingServer, register, settings_for


@pytest.fixture
def store(forgeline_home: Path) -> Iterator[SqlMetadataStore]:
    """The metadata store every server and CLI call of the test uses."""
    opened = SqlMetadataStore(settings_for(forgeline_home).database_url)
    yield opened
    opened.close()


@pytest.fixture
def models(store: SqlMetadataStore, tmp_path: Path) -> Any:
    """``models(group, scale=..., bias=..., ...)``: register a tiny package and return its record."""

    def make(group: str, **options: Any) -> Any:
        return register(store, tmp_path / "models", group, **options)

    return make


@pytest.fixture
def serve(forgeline_home: Path) -> Iterator[Any]:
    """``serve(*args, token=None)``: start `forgeline serve`; every server started is stopped afterwards."""
    started: list[ServingServer] = []

    def start(*args: str, token: str | None = None) -> ServingServer:
        server = ServingServer.start(forgeline_home, *args, token=token)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()

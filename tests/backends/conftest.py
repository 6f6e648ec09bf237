"""Settings that point a test's forgeline at a real backend: PostgreSQL metadata or S3 artifacts (moto)."""

from __future__ import annotations

import os
import signal
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

STOP_LEFTOVERS_SECONDS = 15.0


@dataclass(frozen=True)
class Backend:
    """The FORGELINE_* / AWS_* variables this test runs with (already set in its environment)."""

    env: dict[str, str]


@pytest.fixture
def postgres_backend(forgeline_home: Path, postgres_database_url: str,
                     monkeypatch: pytest.MonkeyPatch) -> Iterator[Backend]:
    """FORGELINE_DATABASE_URL = a fresh PostgreSQL database; unfinished executions are stopped afterwards."""
    monkeypatch.setenv("FORGELINE_DATABASE_URL", postgres_database_url)
    yield Backend({"FORGELINE_DATABASE_URL": postgres_database_url})
    _stop_leftover_executions(postgres_database_url)


@pytest.fixture
def s3_backend(forgeline_home: Path, s3_endpoint: str, s3_bucket: str,
               monkeypatch: pytest.MonkeyPatch) -> Backend:
    """FORGELINE_ARTIFACT_ROOT = s3://<fresh bucket>/forgeline, reached (as a user would) via AWS_ENDPOINT_URL."""
    env = {"FORGELINE_ARTIFACT_ROOT": f"s3://{s3_bucket}/forgeline", "AWS_ENDPOINT_URL": s3_endpoint}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return Backend(env)


def _stop_leftover_executions(database_url: str) -> None:
    """Like the SQLite teardown of ``forgeline_home``: ask unfinished executions to stop, then kill them."""
    from forgeline.store.metadata.sql_store import SqlMetadataStore

    store = SqlMetadataStore(database_url)
    try:
        unfinished = [r for r in store.list_executions(limit=10_000) if not r.status.is_terminal]
        for record in unfinished:
            store.request_stop(record.id)
        deadline = time.monotonic() + STOP_LEFTOVERS_SECONDS
        while unfinished and time.monotonic() < deadline:
            time.sleep(0.1)
            unfinished = [r for r in unfinished if not store.get_execution(r.id).status.is_terminal]
        for record in unfinished:
            pid = store.get_execution(record.id).orchestrator_pid
            warnings.warn(f"execution {record.id} did not stop; killing its orchestrator {pid}", stacklevel=1)
            if pid:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
    finally:
        store.close()

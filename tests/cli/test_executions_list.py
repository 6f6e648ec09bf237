"""`executions list` on SQLite: read without SQLAlchemy, printed exactly as when the store reads it.

A `sqlite+pysqlite:///` URL names the same file but is left to the store (SQLAlchemy), so the two outputs of one
database can be compared.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from forgeline.store.metadata.records import ExecutionStatus
from forgeline.store.metadata.sql_store import SqlMetadataStore
from forgeline.store.metadata.updates import ExecutionUpdate

NOT_FOR_LISTING = ("sqlalchemy", "alembic", "forgeline.engine", "forgeline.executors", "forgeline.jobs", "httpx",
                   "forgeline.store.metadata.sql_store", "forgeline.cli.remote")


@pytest.fixture
def stored(forgeline_home: Path) -> Path:
    """A store holding finished executions of two pipelines (one failed with a two-line reason)."""
    database = forgeline_home / "forgeline.db"
    store = SqlMetadataStore(f"sqlite:///{database}")
    for name in ("train", "score"):
        store.save_pipeline_version(name, {"steps": []})
    ended = datetime.now(UTC)
    for index in range(6):
        execution_id = f"exec{index:08d}"
        store.create_execution(execution_id=execution_id, pipeline_name="train" if index % 2 else "score",
                               pipeline_version=1, parameters={"n": index}, work_dir="/w", steps=[("A", "Script")],
                               started_by={"kind": "cli"})
        store.update_execution(execution_id, ExecutionUpdate(
            status=ExecutionStatus.FAILED if index == 3 else ExecutionStatus.SUCCEEDED,
            started_at=ended - timedelta(seconds=2), ended_at=ended,
            failure_reason="the input was empty\nsee the log" if index == 3 else None))
    store.close()
    return database


def listed_modules(*args: str) -> tuple[str, list[str]]:
    """Run `forgeline executions list ARGS` in a new interpreter; its output and every module it imported."""
    probe = ("import contextlib, io, json, sys\n"
             "from forgeline.cli.main import main\n"
             "out = io.StringIO()\n"
             "with contextlib.redirect_stdout(out):\n"
             f"    code = main(['executions', 'list', *{list(args)!r}])\n"
             "print(json.dumps([code, out.getvalue(), sorted(sys.modules)]))\n")
    env = {**os.environ, "COLUMNS": "200"}
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done
    code, output, modules = json.loads(done.stdout)
    assert code == 0, (output, done.stderr)
    return output, modules


@pytest.mark.parametrize("args", [(), ("--status", "failed,succeeded", "--pipeline", "train", "--limit", "2")])
def test_listing_a_sqlite_store_imports_neither_sqlalchemy_nor_the_engine(stored: Path, args: tuple[str, ...]):
    output, modules = listed_modules(*args)

    assert "exec00000003" in output and "the input was empty …" in output
    imported = [m for m in modules if m.startswith(NOT_FOR_LISTING)]
    assert imported == [], imported


@pytest.mark.parametrize("args", [
    (),
    ("--json",),
    ("--limit", "3"),
    ("--pipeline", "train", "--json"),
    ("--status", "Failed"),
    ("--since", "1h", "--status", "succeeded,failed", "--limit", "4", "--json"),
    ("--since", "2000-01-01T00:00+02:00"),
    ("--pipeline", "nothing"),
])
def test_the_output_is_the_stores_output(stored: Path, cli: Any, args: tuple[str, ...]):
    fast = cli("executions", "list", *args)
    through_store = cli("executions", "list", *args,
                        env={"FORGELINE_DATABASE_URL": f"sqlite+pysqlite:///{stored}"})

    assert fast.returncode == 0, fast
    assert (fast.stdout, fast.stderr) == (through_store.stdout, through_store.stderr)
    assert fast.stdout.strip()


def test_an_unfinished_execution_still_gets_its_liveness_note(stored: Path, cli: Any):
    store = SqlMetadataStore(f"sqlite:///{stored}")
    store.create_execution(execution_id="running00001", pipeline_name="train", pipeline_version=1, parameters={},
                           work_dir="/w", steps=[("A", "Script")])
    store.update_execution("running00001", ExecutionUpdate(orchestrator_pid=2**22 + 12345))  # no such process
    store.close()

    listed = cli("executions", "list", "--json")

    assert listed.returncode == 0, listed
    first = json.loads(listed.stdout)[0]
    assert first["id"] == "running00001" and first["orchestrator_lost"].startswith("orchestrator lost"), first
    store = SqlMetadataStore(f"sqlite:///{stored}")
    store.update_execution("running00001", ExecutionUpdate(status=ExecutionStatus.FAILED, ended_at=datetime.now(UTC)))
    store.close()


def test_a_missing_store_is_still_explained(cli: Any, forgeline_home: Path):
    listed = cli("executions", "list")

    assert listed.returncode == 1, listed
    assert "nothing has run with this store yet" in listed.stderr, listed
    assert not forgeline_home.exists()

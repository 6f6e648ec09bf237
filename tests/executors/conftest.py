"""Fixtures for executor tests: an artifact store, a project folder of user code and JobSpec builders."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from forgeline.executors.local import LocalExecutor
from forgeline.jobs.spec import FunctionRef, JobSpec
from forgeline.store.artifacts import ArtifactStore

STEPS = """
import os
import time


def pid():
    return os.getpid()


def die():
    os.kill(os.getpid(), 9)


def sleep(seconds):
    with open("ready.txt", "w") as out:
        out.write(f"{os.getpid()}\\n")
    time.sleep(seconds)


def noop():
    return None
"""


@pytest.fixture
def artifacts(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(str(tmp_path / "artifacts"))


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    return folder


@pytest.fixture
def steps(project: Path) -> Path:
    return write(project / "steps.py", STEPS)


@pytest.fixture
def executor(artifacts: ArtifactStore) -> Iterator[LocalExecutor]:
    local = LocalExecutor(artifacts, max_parallel=2)
    yield local
    local.shutdown(grace_seconds=1.0)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


class Specs:
    """Builds JobSpecs with fresh job directories under tmp_path."""

    def __init__(self, tmp_path: Path) -> None:
        self._tmp_path = tmp_path
        self._count = 0

    def _paths(self, name: str) -> dict[str, str]:
        self._count += 1
        key = f"{name}-{self._count}"
        return {
            "job_id": f"exec-1/{key}/1",
            "job_dir": str(self._tmp_path / "jobs" / key),
            "log_path": str(self._tmp_path / "logs" / f"{key}.log"),
        }

    def processing(self, code: Path, **fields: Any) -> JobSpec:
        return JobSpec(
            kind="processing", code=str(code), working_dir=str(code.parent), **self._paths(code.stem), **fields
        )

    def function(self, file: Path, name: str, *args: Any, **fields: Any) -> JobSpec:
        return JobSpec(
            kind="function",
            function=FunctionRef(name=name, file=str(file)),
            args=args,
            working_dir=str(file.parent),
            **self._paths(name),
            **fields,
        )


@pytest.fixture
def specs(tmp_path: Path) -> Specs:
    return Specs(tmp_path)

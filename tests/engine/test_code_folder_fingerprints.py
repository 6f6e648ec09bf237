"""A code folder's fingerprint covers what a job copies of it: ignored files never change it."""

from __future__ import annotations

from pathlib import Path

import pytest

from forgeline.engine.code_fingerprint import fingerprint_folder
from forgeline.errors import JobInputError
from forgeline.jobs.code_folder import CodeFolderRules


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    write(root / "train.py", "import helpers\nprint(helpers.X)\n")
    write(root / "helpers.py", "X = 1\n")
    write(root / ".forgelineignore", "data/\n*.log\n")
    return root


def digest(root: Path) -> str:
    rules = CodeFolderRules(excluded=(str(root / ".forgeline"),))
    return fingerprint_folder(str(root), [str(root)], str(root), rules).digest


@pytest.mark.parametrize("ignored", [".forgeline/jobs/e1/Train/1/code/train.py", ".forgeline/forgeline.db",
                                     ".git/index", ".venv/lib/site.py", "myenv/pyvenv.cfg",
                                     "__pycache__/helpers.cpython-311.pyc", "data/train.csv", "run.log"])
def test_changing_only_ignored_files_keeps_the_fingerprint(project, ignored):
    before = digest(project)
    write(project / ignored, "anything")
    assert digest(project) == before
    write(project / ignored, "something else")
    assert digest(project) == before


def test_changing_a_file_of_the_code_changes_the_fingerprint(project):
    before = digest(project)
    write(project / "helpers.py", "X = 2\n")
    assert digest(project) != before


def test_a_folder_over_the_limit_is_refused_before_anything_is_hashed(project):
    write(project / "weights.bin", "x" * 2000)
    with pytest.raises(JobInputError, match="largest entries: weights.bin"):
        fingerprint_folder(str(project), [], str(project), CodeFolderRules(max_bytes=1000))

"""What a code folder contains: forgeline's home, .git, virtual environments, caches and ignored paths stay out."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from forgeline.errors import JobInputError
from forgeline.jobs.code_folder import CodeFolderRules, copy_code_folder, format_size, list_code_folder

from .conftest import write


def project_with_clutter(root: Path) -> Path:
    write(root / "train.py", "import helpers\n")
    write(root / "helpers.py", "X = 1\n")
    write(root / "pkg" / "__init__.py", "")
    write(root / "pkg" / "model.py", "Y = 2\n")
    write(root / ".forgeline" / "jobs" / "e1" / "code" / "train.py", "old copy\n")
    write(root / ".git" / "HEAD", "ref: refs/heads/main\n")
    write(root / ".venv" / "lib" / "site.py", "")
    write(root / "env-py311" / "pyvenv.cfg", "home = /usr/bin\n")
    write(root / "env-py311" / "lib" / "x.py", "")
    write(root / "pkg" / "__pycache__" / "model.cpython-311.pyc", "")
    write(root / "data" / "big.csv", "a,b\n")
    write(root / "notes.tmp", "scratch\n")
    write(root / "keep" / "notes.tmp", "scratch too\n")
    write(root / ".forgelineignore", "# local data\ndata/\n*.tmp\n")
    return root


def relatives(folder: Path, rules: CodeFolderRules) -> list[str]:
    return [f.relative for f in list_code_folder(folder, rules)]


def test_home_git_virtual_environments_caches_and_ignored_paths_are_left_out(tmp_path):
    root = project_with_clutter(tmp_path / "project")
    rules = CodeFolderRules(excluded=(str(root / ".forgeline"),))
    assert relatives(root, rules) == [".forgelineignore", "helpers.py", "pkg/__init__.py", "pkg/model.py",
                                      "train.py"]


def test_forgeline_home_is_left_out_wherever_it_is_and_whatever_its_name(tmp_path):
    root = tmp_path / "project"
    write(root / "train.py", "")
    write(root / "state" / "home" / "forgeline.db", "")
    write(root / "state" / "keep.txt", "")
    rules = CodeFolderRules(excluded=(str(root / "state" / "home"),))
    assert relatives(root, rules) == ["state/keep.txt", "train.py"]
    # reached through a symlink, it is still forgeline's home
    (root / "link-to-home").symlink_to(root / "state" / "home")
    assert relatives(root, rules) == ["state/keep.txt", "train.py"]


def test_a_copy_holds_what_the_listing_says_and_never_itself(tmp_path):
    root = project_with_clutter(tmp_path / "project")
    home = root / ".forgeline"
    target = home / "jobs" / "e2" / "Train" / "1" / "code"  # the job folder lies inside the code folder
    copy_code_folder(root, target, CodeFolderRules(excluded=(str(home),)))
    copied = sorted(str(p.relative_to(target)) for p in target.rglob("*") if p.is_file())
    assert copied == [".forgelineignore", "helpers.py", "pkg/__init__.py", "pkg/model.py", "train.py"]
    assert (target / "helpers.py").read_text() == "X = 1\n"


def test_a_symlink_back_to_a_parent_folder_is_not_followed_forever(tmp_path):
    root = tmp_path / "project"
    write(root / "sub" / "a.py", "")
    (root / "sub" / "loop").symlink_to(root)
    assert relatives(root, CodeFolderRules()) == ["sub/a.py"]


def test_a_folder_over_the_limit_is_refused_in_one_line_naming_its_largest_entries(tmp_path):
    root = tmp_path / "project"
    write(root / "train.py", "x" * 10)
    write(root / "data" / "part-0.bin", "x" * 600)
    write(root / "data" / "part-1.bin", "x" * 600)
    write(root / "weights.pt", "x" * 300)
    with pytest.raises(JobInputError) as raised:
        list_code_folder(root, CodeFolderRules(max_bytes=1000))
    message = str(raised.value)
    assert "\n" not in message
    assert f"code folder {root} holds 1.5 kB, over the 1.0 kB limit" in message
    assert "largest entries: data/ (1.2 kB), weights.pt (300 B), train.py (10 B)" in message
    assert ".forgelineignore" in message and "FORGELINE_MAX_CODE_SIZE" in message
    # ignoring the data brings it under the limit
    write(root / ".forgelineignore", "data/\n")
    assert relatives(root, CodeFolderRules(max_bytes=1000)) == [".forgelineignore", "train.py", "weights.pt"]


def test_broken_symlinks_are_not_code(tmp_path):
    root = tmp_path / "project"
    write(root / "train.py", "")
    os.symlink(root / "gone", root / "dangling")
    assert relatives(root, CodeFolderRules()) == ["train.py"]


@pytest.mark.parametrize(("size", "text"), [(0, "0 B"), (999, "999 B"), (1500, "1.5 kB"), (312_000_000, "312 MB"),
                                            (4_100_000_000, "4.1 GB")])
def test_sizes_read_as_people_write_them(size, text):
    assert format_size(size) == text


def test_a_forgeline_folder_is_left_out_even_when_forgeline_home_is_elsewhere(tmp_path):
    root = project_with_clutter(tmp_path / "project")
    assert ".forgeline/jobs/e1/code/train.py" not in relatives(root, CodeFolderRules(excluded=(str(tmp_path / "x"),)))

"""What a code folder (a step's ``source_dir``) contains: the one rule that both copying and fingerprinting follow.

Left out, wherever they are in the folder: forgeline's own home (FORGELINE_HOME, which lies inside the project by
default, and any folder named ``.forgeline``), ``.git``, virtual environments (``.venv``, ``venv`` or any folder
holding a ``pyvenv.cfg``), ``__pycache__`` and compiled files, and whatever the folder's ``.forgelineignore``
lists (gitignore syntax).
A folder whose remaining files weigh more than the size limit is refused, naming its largest entries.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from forgeline.config import DEFAULT_MAX_CODE_BYTES
from forgeline.errors import JobInputError

IGNORE_FILE = ".forgelineignore"
ALWAYS_SKIPPED_FOLDERS = frozenset({".forgeline", ".git", "__pycache__", ".venv", "venv"})
"""Skipped by name wherever they are; ``.forgeline`` is a forgeline home even when FORGELINE_HOME is elsewhere."""
VENV_MARKER = "pyvenv.cfg"
COMPILED_SUFFIXES = (".pyc", ".pyo")
LARGEST_NAMED = 3


@dataclass(frozen=True)
class CodeFile:
    """One file of a code folder: its path relative to the folder (``/``-separated), absolute path and size."""

    relative: str
    path: str
    size: int


@dataclass(frozen=True)
class CodeFolderRules:
    """Folders left out wherever they are (absolute paths, e.g. FORGELINE_HOME) and the size limit in bytes."""

    excluded: tuple[str, ...] = ()
    max_bytes: int = DEFAULT_MAX_CODE_BYTES


def format_size(size: float) -> str:
    """A byte count as people read it: ``312 MB``, ``4.1 kB``."""
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" or size >= 10 else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


def list_code_folder(folder: str | os.PathLike[str], rules: CodeFolderRules) -> list[CodeFile]:
    """Every file the code folder contributes, sorted; raises JobInputError when it is over the size limit."""
    root = os.path.abspath(folder)
    excluded = {os.path.realpath(path) for path in rules.excluded}
    ignored = _ignore_spec(root)
    files: list[CodeFile] = []
    visited: set[str] = set()
    for current, dirs, names in os.walk(root, followlinks=True):
        real = os.path.realpath(current)
        if real in visited:  # a symlink back to a folder already walked: a loop, not more code
            dirs[:] = []
            continue
        visited.add(real)
        relative_dir = os.path.relpath(current, root)
        prefix = "" if relative_dir == "." else relative_dir.replace(os.sep, "/") + "/"
        dirs[:] = sorted(d for d in dirs
                         if not _skipped_folder(os.path.join(current, d), d, prefix + d, excluded, ignored))
        for name in sorted(names):
            relative = prefix + name
            path = os.path.join(current, name)
            if name.endswith(COMPILED_SUFFIXES) or ignored.match_file(relative):
                continue
            try:
                size = os.stat(path).st_size
            except OSError:  # a broken symlink is not code
                continue
            files.append(CodeFile(relative=relative, path=path, size=size))
    files.sort(key=lambda file: file.relative)
    _check_size(root, files, rules.max_bytes)
    return files


def copy_code_folder(folder: str | os.PathLike[str], target: Path, rules: CodeFolderRules) -> None:
    """Copy what the code folder contains (see :func:`list_code_folder`) to ``target``."""
    files = list_code_folder(folder, rules)
    target.mkdir(parents=True, exist_ok=True)
    for file in files:
        destination = target / file.relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(file.path, destination)


class _IgnoreRules(Protocol):
    def match_file(self, file: str) -> bool: ...


class _NothingIgnored:
    def match_file(self, file: str) -> bool:
        return False


def _ignore_spec(root: str) -> _IgnoreRules:
    try:
        with open(os.path.join(root, IGNORE_FILE), encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except FileNotFoundError:
        return _NothingIgnored()  # most folders have no ignore file: no need to import pathspec (tens of ms)
    import pathspec

    spec: pathspec.GitIgnoreSpec = pathspec.GitIgnoreSpec.from_lines(lines)
    return spec


def _skipped_folder(path: str, name: str, relative: str, excluded: set[str], ignored: _IgnoreRules) -> bool:
    if name in ALWAYS_SKIPPED_FOLDERS or os.path.isfile(os.path.join(path, VENV_MARKER)):
        return True
    if ignored.match_file(relative + "/"):
        return True
    return os.path.realpath(path) in excluded


def _check_size(root: str, files: Iterable[CodeFile], max_bytes: int) -> None:
    entries: dict[str, int] = {}
    for file in files:
        top, _, rest = file.relative.partition("/")
        key = top + "/" if rest else top
        entries[key] = entries.get(key, 0) + file.size
    total = sum(entries.values())
    if total <= max_bytes:
        return
    largest = sorted(entries.items(), key=lambda item: (-item[1], item[0]))[:LARGEST_NAMED]
    named = ", ".join(f"{name} ({format_size(size)})" for name, size in largest)
    raise JobInputError(
        f"code folder {root} holds {format_size(total)}, over the {format_size(max_bytes)} limit; largest "
        f"entries: {named}; list what the job does not need in {IGNORE_FILE} or raise FORGELINE_MAX_CODE_SIZE"
    )

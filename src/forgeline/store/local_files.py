"""Atomic local copies and writes: build a temporary sibling, then rename it into place."""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path


def temporary_sibling(path: str) -> str:
    """A fresh name next to path (`<path>.tmp-<random>`), on the same filesystem so a rename is atomic."""
    return f"{path}.tmp-{secrets.token_hex(6)}"


def copy_into_place(source: Path, destination: str) -> None:
    """Copy a file or folder to destination so that readers see either the old or the complete new one."""
    os.makedirs(os.path.dirname(destination) or ".", exist_ok=True)
    staging = temporary_sibling(destination)
    try:
        if source.is_dir():
            shutil.copytree(source, staging)
        else:
            shutil.copy2(source, staging)
        replace(staging, destination)
    except BaseException:
        remove(staging)
        raise


def write_into_place(data: bytes, destination: str) -> None:
    """Write bytes to destination atomically."""
    os.makedirs(os.path.dirname(destination) or ".", exist_ok=True)
    staging = temporary_sibling(destination)
    try:
        with open(staging, "wb") as handle:
            handle.write(data)
        replace(staging, destination)
    except BaseException:
        remove(staging)
        raise


def replace(staging: str, destination: str) -> None:
    """Rename staging onto destination; a non-empty folder (or a type change) is first renamed aside."""
    try:
        os.replace(staging, destination)
        return
    except OSError:
        if not os.path.lexists(destination):
            raise
    # rename(2) cannot replace a non-empty folder: move the old one aside, then swap. Between the two
    # renames the destination is briefly absent, but never half-written.
    aside = f"{destination}.old-{secrets.token_hex(6)}"
    os.replace(destination, aside)
    os.replace(staging, destination)
    remove(aside)


def copy_out(source: str, destination: Path) -> None:
    """Copy a local file or folder to destination, merging into an existing folder."""
    if os.path.isdir(source):
        shutil.copytree(source, destination, dirs_exist_ok=True)
    else:
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, destination)


def remove(path: str) -> None:
    """Delete a file or folder recursively; a missing path is fine."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def list_files(path: str) -> list[str]:
    """Absolute paths of every file under path (path itself if it is a file), sorted; [] when missing."""
    if os.path.isfile(path):
        return [os.path.abspath(path)]
    found: list[str] = []
    for folder, _, names in os.walk(path):
        found.extend(os.path.abspath(os.path.join(folder, name)) for name in names)
    return sorted(found)


def disk_usage(path: str) -> int:
    """Bytes of the file at path, or of every file under the folder (links are not followed); 0 when missing."""
    try:
        if not os.path.isdir(path) or os.path.islink(path):
            return os.lstat(path).st_size
    except FileNotFoundError:
        return 0
    total = 0
    for folder, _, names in os.walk(path):
        for name in names:
            try:
                total += os.lstat(os.path.join(folder, name)).st_size
            except FileNotFoundError:
                continue
    return total

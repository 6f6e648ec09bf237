"""Which installed distribution provides a top-level module: ``importlib.metadata.packages_distributions()``, fast.

Code fingerprints name each installed package a step imports by ``dist==version``, so every ``pipeline.start()``
needs this table. The standard library builds it by turning every line of every RECORD into a path object and
parsing every METADATA file as an e-mail: a few hundred milliseconds with a hundred distributions installed.
This builds the same table (same keys, same distribution names, in the same order) from the same files with
plain string operations, falling back to the standard library's own reading wherever a case is unusual.
"""

from __future__ import annotations

import csv
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from importlib.metadata import Distribution


def packages_distributions() -> dict[str, list[str]]:
    """Top-level module or package name → names of the distributions that install it, in discovery order."""
    import importlib.metadata  # costly to import: only when a step's code imports an installed package

    found: dict[str, list[str]] = {}
    for dist in importlib.metadata.distributions():
        tops = (dist.read_text("top_level.txt") or "").split() or _top_levels_inferred(dist)
        if not tops:
            continue
        name = _distribution_name(dist)
        for top in tops:
            found.setdefault(top, []).append(name)
    return found


def _top_levels_inferred(dist: Distribution) -> list[str]:
    """The first path part of every ``.py`` file the distribution lists (the module name for a lone file)."""
    record = dist.read_text("RECORD")
    if not record:  # an egg-info install (SOURCES.txt, installed-files.txt): the standard library's reading
        return list(dict.fromkeys(path.parts[0] if len(path.parts) > 1 else path.with_suffix("").name
                                  for path in dist.files or () if path.suffix == ".py"))
    tops: dict[str, None] = {}
    for line in record.splitlines():
        if line.startswith('"'):  # a quoted path (it has a comma or a quote in it): read it as CSV
            name = next(csv.reader([line]), [""])[0]
        elif ".py," in line or line.endswith(".py"):
            name = line.partition(",")[0]
        else:
            continue
        top = _first_part(name) if name.endswith(".py") else None
        if top is not None:
            tops[top] = None
    return list(tops)


def _first_part(name: str) -> str | None:
    """What ``PurePosixPath(name)`` gives as ``parts[0]`` (or the stem of a one-part path) for a ``.py`` file."""
    if name.startswith(("/", ".")) or "//" in name or "/./" in name or name.endswith("/.py"):
        path = PurePosixPath(name)  # unusual spellings: let pathlib normalise them exactly as it does there
        if path.suffix != ".py":
            return None
        return path.parts[0] if len(path.parts) > 1 else path.with_suffix("").name
    head, slash, _ = name.partition("/")
    return head if slash else name[: -len(".py")]


def _distribution_name(dist: Distribution) -> str:
    """The ``Name`` header of the distribution's metadata, read without the e-mail parser when it is plain."""
    text = dist.read_text("METADATA") or dist.read_text("PKG-INFO") or ""
    for line in text.splitlines():
        if not line.strip():
            break  # the headers end at the first blank line
        if line[:5].lower() == "name:" and line[5:].strip():
            return line[5:].strip()
    name: str = dist.metadata["Name"]
    return name

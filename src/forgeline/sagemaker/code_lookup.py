"""Find a step's code on this machine: an S3 object mapped to a local file or folder, or a file under the code root.

The SDK uploads code (a processing script, a training ``sourcedir.tar.gz``) to S3 while it builds a
definition. Here the code is the mapped copy of that object when it exists (a tarball is unpacked once, beside
itself), or else the file of that name under ``--code-root``, where the user's project is.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
from pathlib import Path

from forgeline.errors import PipelineDefinitionError
from forgeline.sagemaker.s3 import S3Map

SKIPPED_FOLDERS = frozenset({".git", ".venv", "venv", "node_modules", "__pycache__", ".forgeline", ".tox"})
UNPACKED_SUFFIX = ".unpacked"


class CodeFinder:
    """Looks up code for the importer: mapped S3 objects first, then the code root."""

    def __init__(self, code_root: str, s3: S3Map) -> None:
        self.code_root = Path(code_root).resolve()
        self.s3 = s3
        if not self.code_root.is_dir():
            raise PipelineDefinitionError(f"code root {code_root!r} is not a folder")

    def script(self, uri: str, what: str) -> Path:
        """A script uploaded to ``uri`` (or given as a local path): its mapped copy, or the file of that name."""
        local = self.s3.local(uri) if uri.startswith("s3://") else uri
        if local and Path(local).is_file():
            return Path(local).resolve()
        return self.unique(Path(uri.rstrip("/")).name, what)

    def source_dir(self, uri: str | None, entry_point: str, what: str) -> Path:
        """The folder of a training or inference script: an unpacked ``sourcedir.tar.gz`` or a folder holding it."""
        if uri:
            local = self.s3.local(uri) if uri.startswith("s3://") else str(self.code_root / uri)
            if local and Path(local).is_dir() and (Path(local) / entry_point).is_file():
                return Path(local).resolve()
            if local and Path(local).is_file() and local.endswith((".tar.gz", ".tgz")):
                return unpack(Path(local))
        return self.unique(entry_point, what).parent

    def unique(self, relative: str, what: str) -> Path:
        """The one file ``relative`` under the code root (directly, else anywhere below it)."""
        direct = self.code_root / relative
        if direct.is_file():
            return direct
        found = [Path(folder, relative) for folder, dirs, _ in os.walk(self.code_root)
                 if not _prune(dirs) and Path(folder, relative).is_file()]
        if len(found) == 1:
            return found[0]
        if not found:
            raise PipelineDefinitionError(
                f"{what}: {relative} is neither in the mapped S3 data nor under the code root {self.code_root}; "
                "point --code-root at the project that holds it, or map its S3 location with --s3-root"
            )
        shown = ", ".join(str(p.relative_to(self.code_root)) for p in found[:5])
        raise PipelineDefinitionError(
            f"{what}: {relative} is found more than once under {self.code_root} ({shown}); "
            "point --code-root at the folder that holds the right one"
        )


def _prune(dirs: list[str]) -> bool:
    dirs[:] = [d for d in dirs if d not in SKIPPED_FOLDERS and not d.startswith(".")]
    return False


def unpack(archive: Path) -> Path:
    """Unpack ``archive`` once into a folder beside it, named after its content; the folder."""
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()[:16]
    target = archive.with_name(f"{archive.name}.{digest}{UNPACKED_SUFFIX}")
    if target.is_dir():
        return target
    staging = target.with_name(target.name + f".tmp-{os.getpid()}")
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(staging, filter="data")
        os.replace(staging, target)
    except (tarfile.TarError, OSError) as exc:
        raise PipelineDefinitionError(f"cannot unpack code archive {archive}: {exc}") from None
    return target

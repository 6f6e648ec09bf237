"""Settings read once at the edge (CLI, API, launcher) and passed down explicitly."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from forgeline.errors import ConfigurationError

HOME_ENV = "FORGELINE_HOME"
DATABASE_URL_ENV = "FORGELINE_DATABASE_URL"
ARTIFACT_ROOT_ENV = "FORGELINE_ARTIFACT_ROOT"
MAX_CODE_SIZE_ENV = "FORGELINE_MAX_CODE_SIZE"
DEFAULT_MAX_CODE_BYTES = 100 * 1000 * 1000
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b?|b)?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Settings:
    """Where forgeline keeps its metadata, artifacts, logs and job directories."""

    home: Path
    database_url: str
    artifact_root: str
    max_code_bytes: int = DEFAULT_MAX_CODE_BYTES  # a code folder (source_dir) larger than this is refused

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from FORGELINE_* variables, defaulting to ./.forgeline with SQLite and local files."""
        env = os.environ if environ is None else environ
        home = Path(env.get(HOME_ENV) or ".forgeline").expanduser().resolve()
        database_url = env.get(DATABASE_URL_ENV) or f"sqlite:///{home / 'forgeline.db'}"
        artifact_root = env.get(ARTIFACT_ROOT_ENV) or str(home / "artifacts")
        max_code_bytes = parse_size(env.get(MAX_CODE_SIZE_ENV) or str(DEFAULT_MAX_CODE_BYTES), MAX_CODE_SIZE_ENV)
        return cls(home=home, database_url=database_url, artifact_root=artifact_root.rstrip("/"),
                   max_code_bytes=max_code_bytes)

    @property
    def logs_dir(self) -> Path:
        """Folder of step logs: <home>/logs/<execution>/<step>/<attempt>.log."""
        return self.home / "logs"

    @property
    def jobs_dir(self) -> Path:
        """Folder of job working directories."""
        return self.home / "jobs"

    def to_env(self) -> dict[str, str]:
        """Environment variables that make a child process see these same settings."""
        return {
            HOME_ENV: str(self.home),
            DATABASE_URL_ENV: self.database_url,
            ARTIFACT_ROOT_ENV: self.artifact_root,
            MAX_CODE_SIZE_ENV: str(self.max_code_bytes),
        }


def parse_size(text: str, what: str) -> int:
    """Bytes from ``250MB``, ``1.5 GB``, ``512k``, ``2GiB`` or a plain byte count; refuses anything else."""
    match = _SIZE.match(text)
    if match is None:
        raise ConfigurationError(f"{what}={text!r} is not a size; write e.g. 250MB, 1GB or a number of bytes")
    unit = (match.group(2) or "b").lower().rstrip("b") or "b"
    power = "bkmgt".index(unit[0])
    base = 1024 if unit.endswith("i") else 1000
    return int(float(match.group(1)) * base**power)

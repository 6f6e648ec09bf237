"""Settings read once at the edge (CLI, API, launcher) and passed down explicitly."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

HOME_ENV = "FORGELINE_HOME"
DATABASE_URL_ENV = "FORGELINE_DATABASE_URL"
ARTIFACT_ROOT_ENV = "FORGELINE_ARTIFACT_ROOT"


@dataclass(frozen=True)
class Settings:
    """Where forgeline keeps its metadata, artifacts, logs and job directories."""

    home: Path
    database_url: str
    artifact_root: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from FORGELINE_* variables, defaulting to ./.forgeline with SQLite and local files."""
        env = os.environ if environ is None else environ
        home = Path(env.get(HOME_ENV) or ".forgeline").expanduser().resolve()
        database_url = env.get(DATABASE_URL_ENV) or f"sqlite:///{home / 'forgeline.db'}"
        artifact_root = env.get(ARTIFACT_ROOT_ENV) or str(home / "artifacts")
        return cls(home=home, database_url=database_url, artifact_root=artifact_root.rstrip("/"))

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
        }

"""Settings read once at the edge (CLI, API, launcher) and passed down explicitly."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from forgeline.errors import ConfigurationError

HOME_ENV = "FORGELINE_HOME"
DATABASE_URL_ENV = "FORGELINE_DATABASE_URL"
ARTIFACT_ROOT_ENV = "FORGELINE_ARTIFACT_ROOT"
KEEP_JOBS_ENV = "FORGELINE_KEEP_JOBS"
HOME_FOLDER = ".forgeline"
MAX_CODE_SIZE_ENV = "FORGELINE_MAX_CODE_SIZE"
DEFAULT_MAX_CODE_BYTES = 100 * 1000 * 1000
AUTO_RESUME_ENV = "FORGELINE_AUTO_RESUME"
ORCHESTRATOR_TIMEOUT_ENV = "FORGELINE_ORCHESTRATOR_TIMEOUT"
DEFAULT_ORCHESTRATOR_TIMEOUT_SECONDS = 30.0
"""An orchestrator silent this long is lost: six of its heartbeats (one every timeout/6 s, at most 5 s)."""
EXECUTOR_ENV = "FORGELINE_EXECUTOR"
EXECUTORS = ("local", "ray", "ray://<host>:<port>")
"""The executors FORGELINE_EXECUTOR may name: ``local`` runs jobs as processes on this machine, ``ray`` on a Ray
cluster started here (or RAY_ADDRESS's), ``ray://host:port`` on the Ray cluster whose head listens there."""
_RAY_ADDRESS = re.compile(r"^ray://[A-Za-z0-9_.\-]+:\d{1,5}$")
INSTANCE_TYPES_ENV = "FORGELINE_INSTANCE_TYPES"
"""Instance types as Ray resources, as JSON: ``{"ml.g5.xlarge": {"num_cpus": 4, "num_gpus": 1, "memory": "16GiB"}}``."""
STORE_RETRY_ENV = "FORGELINE_STORE_RETRY_SECONDS"
DEFAULT_STORE_RETRY_SECONDS = 30.0
"""A metadata store call keeps trying this long through a locked or unreachable database, then fails clearly."""
MAX_CONCURRENT_EXECUTIONS_ENV = "FORGELINE_MAX_CONCURRENT_EXECUTIONS"
DEFAULT_MAX_CONCURRENT_EXECUTIONS = 4
"""How many queued executions a server's launcher runs at once; more wait, Queued, for room."""
CLOCK_FILE_ENV = "FORGELINE_CLOCK_FILE"
"""Tests only: a file holding an ISO 8601 time that a server's schedules take as now (absent or empty: real time)."""
STORAGE_OPTIONS_ENV = "FORGELINE_STORAGE_OPTIONS"
"""fsspec storage options per URL protocol, as JSON: ``{"s3": {"endpoint_url": "http://...", "key": "..."}}``."""
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b?|b)?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Settings:
    """Where forgeline keeps its metadata, artifacts, logs and job directories."""

    home: Path
    database_url: str
    artifact_root: str
    max_code_bytes: int = DEFAULT_MAX_CODE_BYTES  # a code folder (source_dir) larger than this is refused
    # a command (or a server's launcher) that finds an execution's orchestrator lost resumes it; a server's
    # launcher fails it otherwise
    auto_resume: bool = False
    orchestrator_timeout_seconds: float = DEFAULT_ORCHESTRATOR_TIMEOUT_SECONDS
    keep_jobs: bool = False  # keep a succeeded step's job folder (by default it is removed)
    executor: str = "local"  # where jobs run (one of EXECUTORS)
    store_retry_seconds: float = DEFAULT_STORE_RETRY_SECONDS
    max_concurrent_executions: int = DEFAULT_MAX_CONCURRENT_EXECUTIONS  # a server's queue launcher's limit
    # fsspec options per protocol for every remote location forgeline opens (artifact root, s3:// inputs, ...)
    storage_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict, hash=False)
    # instance types mapped to Ray resources, on top of the built-in table (FORGELINE_INSTANCE_TYPES)
    instance_types: Mapping[str, Mapping[str, Any]] = field(default_factory=dict, hash=False)
    # FORGELINE_HOME unset and no .forgeline in this folder or above: home is ./.forgeline, made by the first write
    searched_from: Path | None = None
    clock_file: Path | None = None  # tests only: the time a server's schedules take as now (FORGELINE_CLOCK_FILE)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from FORGELINE_* variables; without FORGELINE_HOME, the nearest .forgeline (see find_home)."""
        env = os.environ if environ is None else environ
        searched_from = None
        if env.get(HOME_ENV):
            home = Path(env[HOME_ENV]).expanduser().resolve()
        else:
            start = Path.cwd()
            found = find_home(start)
            home, searched_from = (found, None) if found else (start / HOME_FOLDER, start)
        database_url = env.get(DATABASE_URL_ENV) or f"sqlite:///{home / 'forgeline.db'}"
        artifact_root = env.get(ARTIFACT_ROOT_ENV) or str(home / "artifacts")
        max_code_bytes = parse_size(env.get(MAX_CODE_SIZE_ENV) or str(DEFAULT_MAX_CODE_BYTES), MAX_CODE_SIZE_ENV)
        return cls(home=home, database_url=database_url, artifact_root=artifact_root.rstrip("/"),
                   max_code_bytes=max_code_bytes, auto_resume=parse_flag(env.get(AUTO_RESUME_ENV), AUTO_RESUME_ENV),
                   orchestrator_timeout_seconds=parse_seconds(env.get(ORCHESTRATOR_TIMEOUT_ENV),
                                                              ORCHESTRATOR_TIMEOUT_ENV,
                                                              DEFAULT_ORCHESTRATOR_TIMEOUT_SECONDS),
                   keep_jobs=parse_flag(env.get(KEEP_JOBS_ENV), KEEP_JOBS_ENV),
                   executor=parse_executor(env.get(EXECUTOR_ENV)), searched_from=searched_from,
                   store_retry_seconds=parse_seconds(env.get(STORE_RETRY_ENV), STORE_RETRY_ENV,
                                                     DEFAULT_STORE_RETRY_SECONDS),
                   max_concurrent_executions=parse_count(env.get(MAX_CONCURRENT_EXECUTIONS_ENV),
                                                         MAX_CONCURRENT_EXECUTIONS_ENV,
                                                         DEFAULT_MAX_CONCURRENT_EXECUTIONS),
                   storage_options=parse_storage_options(env.get(STORAGE_OPTIONS_ENV)),
                   instance_types=parse_instance_types(env.get(INSTANCE_TYPES_ENV)),
                   clock_file=Path(env[CLOCK_FILE_ENV]) if env.get(CLOCK_FILE_ENV) else None)

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
            AUTO_RESUME_ENV: "1" if self.auto_resume else "0",
            ORCHESTRATOR_TIMEOUT_ENV: f"{self.orchestrator_timeout_seconds:g}",
            KEEP_JOBS_ENV: "1" if self.keep_jobs else "0",
            EXECUTOR_ENV: self.executor,
            STORE_RETRY_ENV: f"{self.store_retry_seconds:g}",
            MAX_CONCURRENT_EXECUTIONS_ENV: str(self.max_concurrent_executions),
            STORAGE_OPTIONS_ENV: json.dumps(self.storage_options),
            INSTANCE_TYPES_ENV: json.dumps(self.instance_types),
        }


def find_home(start: Path) -> Path | None:
    """The nearest ``.forgeline`` folder in ``start`` or a folder above it, as git finds ``.git``; None if none.

    Like git, the search stops at a filesystem boundary (a mount point), so it never wanders onto another disk.
    """
    folder = start.resolve()
    try:
        device = folder.stat().st_dev
    except OSError:
        return None
    while True:
        candidate = folder / HOME_FOLDER
        if candidate.is_dir():
            return candidate
        parent = folder.parent
        try:
            if parent == folder or parent.stat().st_dev != device:
                return None
        except OSError:
            return None
        folder = parent


def parse_size(text: str, what: str) -> int:
    """Bytes from ``250MB``, ``1.5 GB``, ``512k``, ``2GiB`` or a plain byte count; refuses anything else."""
    match = _SIZE.match(text)
    if match is None:
        raise ConfigurationError(f"{what}={text!r} is not a size; write e.g. 250MB, 1GB or a number of bytes")
    unit = (match.group(2) or "b").lower().rstrip("b") or "b"
    power = "bkmgt".index(unit[0])
    base = 1024 if unit.endswith("i") else 1000
    return int(float(match.group(1)) * base**power)


def parse_flag(text: str | None, what: str) -> bool:
    """A yes/no setting: 1, true, yes, on or 0, false, no, off (any case); unset is no."""
    value = (text or "0").strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ConfigurationError(f"{what}={text!r} is not a yes/no value; write 1 or 0")


def parse_executor(text: str | None) -> str:
    """An executor name (see EXECUTORS); unset is ``local``."""
    name = (text or "local").strip() or "local"
    if name.lower() in ("local", "ray"):
        return name.lower()
    if not _RAY_ADDRESS.match(name):
        raise ConfigurationError(f"{EXECUTOR_ENV}={text!r} is not an executor; accepted: {', '.join(EXECUTORS)}")
    return name


def parse_instance_types(text: str | None) -> dict[str, dict[str, Any]]:
    """Instance types as Ray resources from a JSON object of objects; unset or empty is none."""
    if not text or not text.strip():
        return {}
    try:
        table = json.loads(text)
    except ValueError as exc:
        raise ConfigurationError(f"{INSTANCE_TYPES_ENV} is not JSON: {exc}") from None
    if not isinstance(table, dict) or not all(isinstance(v, dict) for v in table.values()):
        raise ConfigurationError(f"{INSTANCE_TYPES_ENV} must be a JSON object of objects, like "
                                 '{"ml.g5.xlarge": {"num_cpus": 4, "num_gpus": 1, "memory": "16GiB"}}')
    return table


def parse_storage_options(text: str | None) -> dict[str, dict[str, Any]]:
    """fsspec options per protocol from a JSON object of objects; unset or empty is none.

    The value is never echoed in an error: it usually holds secret keys.
    """
    if text is None or not text.strip():
        return {}
    example = 'write e.g. {"s3": {"endpoint_url": "http://127.0.0.1:9000", "key": "...", "secret": "..."}}'
    try:
        options = json.loads(text)
    except ValueError:
        raise ConfigurationError(f"{STORAGE_OPTIONS_ENV} is not valid JSON; {example}") from None
    if not isinstance(options, dict) or not all(isinstance(value, dict) for value in options.values()):
        raise ConfigurationError(f"{STORAGE_OPTIONS_ENV} must be a JSON object of options per protocol; {example}")
    return options


def parse_seconds(text: str | None, what: str, default: float) -> float:
    """A positive number of seconds; unset is ``default``."""
    if text is None or not text.strip():
        return default
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise ConfigurationError(f"{what}={text!r} is not a positive number of seconds; write e.g. 30")
    return seconds


def parse_count(text: str | None, what: str, default: int) -> int:
    """A whole number of at least 1; unset is ``default``."""
    if text is None or not text.strip():
        return default
    try:
        count = int(text)
    except ValueError:
        count = 0
    if count < 1:
        raise ConfigurationError(f"{what}={text!r} is not a whole number of at least 1; write e.g. 4")
    return count


SERVER_URL_ENV = "FORGELINE_URL"
SERVER_TOKEN_ENV = "FORGELINE_TOKEN"
SERVING_URL_ENV = "FORGELINE_SERVING_URL"
SERVING_TOKEN_ENV = "FORGELINE_SERVING_TOKEN"
_SERVER_URL = re.compile(r"^https?://[^/\s?#]+(/[^\s?#]*)?$")


@dataclass(frozen=True)
class ServerConnection:
    """The forgeline server the CLI talks to instead of the store (FORGELINE_URL), with its token (FORGELINE_TOKEN)."""

    url: str  # e.g. http://127.0.0.1:8080, without a trailing slash
    token: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ServerConnection | None:
        """The server FORGELINE_URL names, or None when it is unset (commands then use the store directly)."""
        return cls._named(environ, SERVER_URL_ENV, SERVER_TOKEN_ENV, "forgeline server")

    @classmethod
    def serving_from_env(cls, environ: Mapping[str, str] | None = None) -> ServerConnection | None:
        """The ``forgeline serve`` a server asks for endpoints' live traffic (FORGELINE_SERVING_URL, with
        FORGELINE_SERVING_TOKEN when it wants one), or None when it is unset."""
        return cls._named(environ, SERVING_URL_ENV, SERVING_TOKEN_ENV, "forgeline serve")

    @classmethod
    def _named(cls, environ: Mapping[str, str] | None, url_env: str, token_env: str,
               command: str) -> ServerConnection | None:
        env = os.environ if environ is None else environ
        url = (env.get(url_env) or "").strip()
        if not url:
            return None
        if not _SERVER_URL.match(url):
            raise ConfigurationError(f"{url_env}={url!r} is not a server URL; write e.g. "
                                     f"http://127.0.0.1:8080 (the address `{command}` prints)")
        return cls(url.rstrip("/"), (env.get(token_env) or "").strip() or None)

"""Job interpreters: a given python, or a virtual environment built once per requirements file and reused.

An environment lives in ``<envs_dir>/<key>``, the key being a digest of the requirements file's content and of
the base interpreter it is built on. It is created with ``python -m venv --system-site-packages`` and a
``.pth`` file that also adds the base interpreter's own site-packages (forgeline usually runs in a virtual
environment, whose packages ``--system-site-packages`` alone would not show). So the environment starts in
a fraction of a second, sees everything forgeline's interpreter has (numpy, torch, ...), and pip installs
into it only what the requirements file adds or pins differently; its own packages come first on sys.path.

Builds of the same key are serialised by a file lock; a build that died half way (no ready marker) is
removed and redone. Environments are never updated in place: a changed requirements file is a new key.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from forgeline.errors import JobError
from forgeline.jobs.process import note_in_log
from forgeline.jobs.spec import JobSpec

READY_MARKER = ".forgeline-ready"
"""Written last: an environment folder without it is a build that did not finish."""

BUILD_LOG = "forgeline-build.log"
BASE_PACKAGES_PTH = "_forgeline_base_packages.pth"
_BUILD_LOG_TAIL_LINES = 15
_PROBE = (
    "import importlib.util, json, site, sys; "
    "print(json.dumps({'site': site.getsitepackages(), 'pip': importlib.util.find_spec('pip') is not None}))"
)


@dataclass(frozen=True)
class Environment:
    """A ready virtual environment and whether this call built it (False: it was reused)."""

    path: Path
    built: bool
    seconds: float

    @property
    def python(self) -> Path:
        """Its interpreter."""
        return self.path / "bin" / "python"


def job_interpreter(spec: JobSpec, default: str) -> str:
    """The Python that runs a script job: its environment's, its own ``python``, or ``default``."""
    base = find_python(spec.python, spec.working_dir) if spec.python else default
    if spec.requirements is None:
        return base
    if spec.envs_dir is None:
        raise JobError(f"job {spec.job_id} names requirements {spec.requirements} but no folder for environments")
    environment = ensure_environment(Path(spec.requirements), Path(spec.envs_dir), base)
    if environment.built:
        note_in_log(spec.log_path, f"built environment {environment.path} from {spec.requirements} "
                                   f"in {environment.seconds:.1f} s")
    else:
        note_in_log(spec.log_path, f"using environment {environment.path} (built earlier from {spec.requirements})")
    return str(environment.python)


def find_python(python: str, working_dir: str | None) -> str:
    """An interpreter given as a path (relative to the project) or as a command name on PATH."""
    if os.sep in python:
        path = Path(working_dir or os.getcwd(), python)
        if not path.is_file():
            raise JobError(f"python {python} does not exist ({path})")
        return str(path)
    found = shutil.which(python)
    if found is None:
        raise JobError(f"python {python!r} is not a path and was not found on PATH")
    return found


def environment_key(requirements: bytes, base_python: str) -> str:
    """The folder name of the environment for these requirements on this base interpreter."""
    digest = hashlib.sha256(requirements + b"\0" + os.path.abspath(base_python).encode())
    return digest.hexdigest()[:24]


def ensure_environment(requirements: Path, envs_dir: Path, base_python: str) -> Environment:
    """The environment for ``requirements`` on ``base_python``, built now unless an earlier build is ready."""
    started = time.monotonic()
    try:
        content = requirements.read_bytes()
    except OSError as exc:
        raise JobError(f"requirements file {requirements} cannot be read: {exc}") from None
    path = envs_dir / environment_key(content, base_python)
    if (path / READY_MARKER).is_file():
        return Environment(path, built=False, seconds=time.monotonic() - started)
    envs_dir.mkdir(parents=True, exist_ok=True)
    with _exclusive(path.with_name(path.name + ".lock")):
        if (path / READY_MARKER).is_file():  # another job built it while this one waited for the lock
            return Environment(path, built=False, seconds=time.monotonic() - started)
        shutil.rmtree(path, ignore_errors=True)
        _build(path, requirements, base_python)
        (path / READY_MARKER).write_text(json.dumps({"requirements": str(requirements), "base": base_python}))
    return Environment(path, built=True, seconds=time.monotonic() - started)


@contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    with open(lock_path, "a") as handle:  # flock: held per open file, so threads and processes both wait
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _build(path: Path, requirements: Path, base_python: str) -> None:
    probe = json.loads(_check_output([base_python, "-c", _PROBE], f"python {base_python} could not be started"))
    command = [base_python, "-m", "venv", "--system-site-packages"]
    if probe["pip"]:
        command.append("--without-pip")  # pip comes from the base packages; ensurepip would take seconds
    _check_output([*command, str(path)], f"could not create a virtual environment at {path}")
    site_packages = _check_output(
        [str(path / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        f"the virtual environment at {path} does not start",
    ).strip()
    lines = [f"import site; site.addsitedir({folder!r})" for folder in probe["site"]]
    Path(site_packages, BASE_PACKAGES_PTH).write_text("\n".join(lines) + "\n")
    log_path = path / BUILD_LOG
    with open(log_path, "wb") as log:
        process = subprocess.run(
            [str(path / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check",
             "--no-input", "-r", str(requirements)],
            cwd=requirements.parent,  # relative paths in the file mean what they mean next to it
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, check=False,
        )
    if process.returncode != 0:
        tail = log_path.read_text(errors="replace").splitlines()[-_BUILD_LOG_TAIL_LINES:]
        raise JobError(
            f"could not install {requirements} into a new environment (pip exited with code "
            f"{process.returncode}); its output is in {log_path}:\n" + "\n".join(tail)
        )


def _check_output(command: list[str], failure: str) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False)
    except OSError as exc:
        raise JobError(f"{failure}: {exc}") from None
    if done.returncode != 0:
        raise JobError(f"{failure}: {done.stderr.strip() or f'exit code {done.returncode}'}")
    return done.stdout
